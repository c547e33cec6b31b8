"""Plain-text summaries of ingest runs and plans: one line per landing entry, one line of counts.

Used by the console (``aodncore ingest``, ``--dry-run``) and the flows' final log line. Every name in them is
already shown escaped (outcomes hold shown text, plan items are shown here), so a line is always one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from aodncore.ingest.names import shown
from aodncore.ingest.outcome import FAILED, IGNORED, PUBLISHED, QUARANTINED, SKIPPED, WAITING, FileOutcome
from aodncore.ingest.plan import TODO, PlanItem

__all__ = ["SUMMARY_ORDER", "count_line", "outcome_line", "plan_line"]

#: The order of the statuses in a count line.
SUMMARY_ORDER = (TODO, PUBLISHED, QUARANTINED, FAILED, SKIPPED, WAITING, IGNORED)

_LABELS = {TODO: "to ingest", WAITING: "waiting (still being written; a later run takes them)"}


def count_line(statuses: Mapping[str, int] | Iterable[str], *, empty: str = "no files found") -> str:
    """``"2 published, 1 quarantined, 1 skipped, 1 waiting (...), 3 ignored"`` (statuses with no entry left out);
    ``statuses``: one status per entry, or a count per status."""
    counts = Counter(dict(statuses)) if isinstance(statuses, Mapping) else Counter(statuses)
    parts = [f"{counts[status]} {_LABELS.get(status, status)}" for status in SUMMARY_ORDER if counts[status]]
    parts += [f"{count} {status}" for status, count in sorted(counts.items()) if status not in SUMMARY_ORDER]
    return ", ".join(parts) or empty


def outcome_line(outcome: FileOutcome) -> str:
    """One line for one outcome: status, name, check result, publish type, where it went, error or note."""
    if outcome.status in (PUBLISHED, QUARANTINED) or outcome.check_result != "n/a":
        where = outcome.error_uri or outcome.destination
        line = f"{outcome.status:<12} {outcome.name}  check={outcome.check_result}"
        line += f"  {outcome.publish_type or '-'}  {where or '-'}"
    else:
        line = f"{outcome.status:<12} {outcome.name}  {outcome.source}"
    if outcome.error:
        line += f"  error: {outcome.error}"
    if outcome.note:
        line += f"  ({outcome.note})"
    return line


def plan_line(item: PlanItem) -> str:
    """One line of a dry run: what would happen to the entry, and why."""
    label = "would ingest" if item.status == TODO else item.status
    line = f"{label:<12} {shown(item.name)}  {shown(item.uri)}"
    return f"{line}  ({item.reason})" if item.reason else line

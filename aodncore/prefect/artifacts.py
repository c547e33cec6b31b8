"""Prefect artifacts for ingest results: one outcome table per run and one markdown report of its refused and
failed files (a report per file is available too)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from aodncore.ingest.outcome import FAILED, QUARANTINED, FileOutcome
from aodncore.ingest.result import IngestResult

__all__ = [
    "TABLE_COLUMNS",
    "create_failure_report",
    "create_failure_summary",
    "create_outcome_table",
    "create_result_table",
    "failure_report_markdown",
    "failure_summary_markdown",
    "outcome_table_rows",
    "result_table_rows",
    "sanitise_key",
]

#: Column order of the outcome table.
TABLE_COLUMNS = ("name", "status", "check result", "publish type", "destination", "stored", "archived", "error")

_MAX_KEY_LENGTH = 200
_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


def sanitise_key(key: str | None) -> str | None:
    """A Prefect artifact key: lowercase letters, digits and single dashes; None when nothing is left."""
    if key is None:
        return None
    cleaned = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:_MAX_KEY_LENGTH].strip("-")
    return cleaned or None


def _redact(text: str | None) -> str:
    return _CREDENTIALS_IN_URL.sub("***@", text or "")


def outcome_table_rows(outcomes: Sequence[FileOutcome]) -> list[dict[str, object]]:
    """The rows :func:`create_outcome_table` publishes (one per outcome, columns :data:`TABLE_COLUMNS`)."""
    return [
        {
            "name": outcome.name,
            "status": outcome.status,
            "check result": outcome.check_result,
            "publish type": outcome.publish_type,
            "destination": _redact(outcome.destination),
            "stored": outcome.stored,
            "archived": outcome.archived,
            "error": _redact(outcome.error),
        }
        for outcome in outcomes
    ]


def _summary(outcomes: Sequence[FileOutcome]) -> str:
    counts = Counter(outcome.status for outcome in outcomes)
    parts = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"{len(outcomes)} file(s): {parts}" if outcomes else "no files"


def result_table_rows(result: IngestResult) -> list[dict[str, object]]:
    """The rows :func:`create_result_table` publishes: one per listed entry, then one per summarised reason with
    entries not listed, saying how many and that the list is truncated."""
    rows = outcome_table_rows(result.outcomes)
    for summary in result.summaries:
        if summary.truncated:
            rows.append({
                "name": f"… {summary.count - summary.listed} more not listed (list truncated): "
                        f"{result.summary_line(summary)}",
                "status": summary.status, "check result": "n/a", "publish type": "", "destination": "",
                "stored": False, "archived": False, "error": "",
            })
    return rows


def _result_summary(result: IngestResult) -> str:
    parts = ", ".join(f"{count} {status}" for status, count in sorted(result.counts.items()) if count)
    text = f"{result.total} file(s): {parts}" if result.total else "no files"
    return f"{text}; list truncated, {'; '.join(result.truncation_lines())}" if result.truncated else text


def create_result_table(result: IngestResult, key: str | None = None) -> UUID:
    """Create the Prefect table artifact of a run's result (:func:`result_table_rows`); return the artifact id.
    Its description counts every entry, listed or summarised."""
    return create_table_artifact(
        result_table_rows(result),
        key=sanitise_key(key),
        description=f"Ingest outcome: {_result_summary(result)}",
        _sync=True,  # type: ignore[call-arg]  # also from async flows: this helper is synchronous
    )


def create_outcome_table(outcomes: Sequence[FileOutcome], key: str | None = None,
                         description: str | None = None) -> UUID:
    """Create a Prefect table artifact listing each outcome; return the artifact id.

    Works inside a flow or task run (the artifact is linked to it) and, against a reachable API, outside one.
    """
    return create_table_artifact(
        outcome_table_rows(outcomes),
        key=sanitise_key(key),
        description=description or f"Ingest outcome: {_summary(outcomes)}",
        _sync=True,  # type: ignore[call-arg]  # also from async flows: this helper is synchronous
    )


def _cell(value: object) -> str:
    text = "yes" if value is True else "no" if value is False else "" if value is None else str(value)
    return _redact(text).replace("|", "\\|").replace("\n", " ")


def failure_report_markdown(outcome: FileOutcome) -> str:
    """The markdown of :func:`create_failure_report`."""
    return "\n".join(_report_lines(outcome, level=1)) + "\n"


def _report_lines(outcome: FileOutcome, level: int) -> list[str]:
    """One file's report; its title is a heading of ``level``, its sections one level below."""
    title, section = "#" * level, "#" * (level + 1)
    if outcome.status == QUARANTINED:
        headline = "was refused and kept in the error store"
    elif outcome.status == FAILED:
        headline = "could not be processed (system error); the landing object was kept for a retry"
    else:
        headline = f"finished with status '{outcome.status}'"
    lines = [
        f"{title} `{_cell(outcome.name)}` {headline}",
        "",
        f"{section} Reason",
        "",
        "```text",
        _redact(outcome.error) or "(no reason recorded)",
        "```",
        "",
        f"* **source:** `{_cell(outcome.source)}`",
        f"* **check result:** {_cell(outcome.check_result)}",
    ]
    if outcome.failed_checks:
        lines.append(f"* **failed checks:** {', '.join(f'`{_cell(name)}`' for name in outcome.failed_checks)}")
    if outcome.handler:
        lines.append(f"* **handler:** {_cell(outcome.handler)}")
    if outcome.publish_type:
        lines.append(f"* **publish type:** {_cell(outcome.publish_type)}")
    if outcome.error_uri:
        lines.append(f"* **kept at:** `{_cell(outcome.error_uri)}`")
    if outcome.files:
        lines += ["", f"{section} Files", "",
                  "| name | check passed | publish type | destination | stored | archived |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in outcome.files:
            lines.append("| " + " | ".join(_cell(row.get(column)) for column in (
                "name", "check_passed", "publish_type", "dest_path", "stored", "archived")) + " |")
    return lines


def create_failure_report(outcome: FileOutcome, key: str | None = None) -> UUID:
    """Create a Prefect markdown artifact explaining why ``outcome`` failed or was quarantined."""
    return create_markdown_artifact(
        failure_report_markdown(outcome),
        key=sanitise_key(key),
        description=f"{outcome.status}: {outcome.name}",
        _sync=True,  # type: ignore[call-arg]
    )


def _status_counts(outcomes: Sequence[FileOutcome]) -> str:
    counts = Counter(outcome.status for outcome in outcomes)
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


def failure_summary_markdown(outcomes: Sequence[FileOutcome], limit: int = 20) -> str:
    """The markdown of :func:`create_failure_summary`: a heading with the counts, then the report of each of the
    first ``limit`` outcomes, then how many more there are (every one is in the outcome table and the error store)."""
    lines = [f"# {len(outcomes)} file(s) refused or failed: {_status_counts(outcomes)}", ""]
    for outcome in outcomes[:limit]:
        lines += _report_lines(outcome, level=2) + [""]
    if len(outcomes) > limit:
        lines.append(f"… and {len(outcomes) - limit} more, not shown here: every file is in the run's outcome table, "
                     "and each refused file in the error store beside its reason.")
    return "\n".join(lines).rstrip("\n") + "\n"


def create_failure_summary(outcomes: Sequence[FileOutcome], key: str | None = None, limit: int = 20) -> UUID:
    """Create one Prefect markdown artifact reporting every refused or failed outcome of a run (the first ``limit``
    in full). One artifact per run instead of one per file: the API server's cost is per artifact."""
    return create_markdown_artifact(
        failure_summary_markdown(outcomes, limit),
        key=sanitise_key(key),
        description=f"{len(outcomes)} refused or failed: {_status_counts(outcomes)}",
        _sync=True,  # type: ignore[call-arg]
    )

"""Final Prefect states that tell the truth about the files of a run (or of one ``ingest-batch`` task run).

* any ``failed`` file (a system error: store down, a bug) → **Failed**, with the counts in the message;
* otherwise, any ``quarantined`` file → **Completed** under the state name :data:`QUARANTINED_STATE_NAME`
  (filterable in the UI and the API), e.g. message "16 of 20 quarantined, 4 published";
* otherwise → **Completed**.

The run's result is the state's data either way, so ``state.result(raise_on_failure=False)`` returns it (for the
flows, :meth:`aodncore.ingest.result.IngestResult.to_dict`). The counts in the message count every entry, also
those the result only summarises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from prefect.states import Completed, Failed, State

from aodncore.ingest.outcome import FAILED, QUARANTINED, STATUSES

__all__ = ["QUARANTINED_STATE_NAME", "IngestRunFailed", "final_state", "summarise"]

QUARANTINED_STATE_NAME = "Quarantined"
"""Name of the Completed state of a run in which files were quarantined but none failed."""


class IngestRunFailed(RuntimeError):
    """Raised by calling an ingest flow directly (without ``return_state=True``) when its run ended Failed because
    files failed (``str()`` is the state message). ``result`` is the run's result (for the flows the dict of
    :meth:`aodncore.ingest.result.IngestResult.to_dict`), ``outcomes`` its listed outcome dicts."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
        self.outcomes = result.get("outcomes", []) if isinstance(result, dict) else result


def _counts(statuses: Mapping[str, int] | Iterable[str]) -> Counter[str]:
    return Counter(dict(statuses)) if isinstance(statuses, Mapping) else Counter(statuses)


def summarise(statuses: Mapping[str, int] | Iterable[str]) -> str:
    """'3 of 20 failed, 5 quarantined, 12 published' (most important first); 'no files' when empty.

    ``statuses``: one status per entry, or a count per status."""
    counts = _counts(statuses)
    total = sum(counts.values())
    order = [FAILED, QUARANTINED, *(status for status in STATUSES if status not in (FAILED, QUARANTINED))]
    present = [status for status in order if counts.get(status)]
    if not present:
        return "no files"
    first, *rest = present
    return ", ".join([f"{counts[first]} of {total} {first}", *(f"{counts[s]} {s}" for s in rest)])


def final_state(statuses: Mapping[str, int] | Iterable[str], data: Any, *, what: str = "ingest") -> State:
    """The state a flow or task should end in for these file statuses (or counts per status), carrying ``data``
    as its result."""
    counts = _counts(statuses)
    message = f"{what}: {summarise(counts)}"
    if counts[FAILED]:
        return Failed(message=message, data=data)
    if counts[QUARANTINED]:
        return Completed(name=QUARANTINED_STATE_NAME, message=message, data=data)
    return Completed(message=message, data=data)

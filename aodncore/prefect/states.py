"""Final Prefect states that tell the truth about the files of a run (or of one ``ingest-batch`` task run).

* any ``failed`` file (a system error: store down, a bug) → **Failed**, with the counts in the message;
* otherwise, any ``quarantined`` file → **Completed** under the state name :data:`QUARANTINED_STATE_NAME`
  (filterable in the UI and the API), e.g. message "16 of 20 quarantined, 4 published";
* otherwise → **Completed**.

The outcome dicts are the state's data either way, so ``state.result(raise_on_failure=False)`` returns them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from prefect.states import Completed, Failed, State

from aodncore.ingest.outcome import FAILED, QUARANTINED, STATUSES

__all__ = ["QUARANTINED_STATE_NAME", "IngestRunFailed", "final_state", "summarise"]

QUARANTINED_STATE_NAME = "Quarantined"
"""Name of the Completed state of a run in which files were quarantined but none failed."""


class IngestRunFailed(RuntimeError):
    """Raised by calling an ingest flow directly (without ``return_state=True``) when its run ended Failed because
    files failed; ``outcomes`` holds every outcome dict of the run (``str()`` is the state message)."""

    def __init__(self, message: str, outcomes: Any) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def summarise(statuses: Sequence[str]) -> str:
    """'3 of 20 failed, 5 quarantined, 12 published' (most important first); 'no files' when empty."""
    counts = Counter(statuses)
    order = [FAILED, QUARANTINED, *(status for status in STATUSES if status not in (FAILED, QUARANTINED))]
    present = [status for status in order if counts.get(status)]
    if not present:
        return "no files"
    first, *rest = present
    return ", ".join([f"{counts[first]} of {len(statuses)} {first}", *(f"{counts[s]} {s}" for s in rest)])


def final_state(statuses: Sequence[str], data: Any, *, what: str = "ingest") -> State:
    """The state a flow or task should end in for these file statuses, carrying ``data`` as its result."""
    message = f"{what}: {summarise(statuses)}"
    if FAILED in statuses:
        return Failed(message=message, data=data)
    if QUARANTINED in statuses:
        return Completed(name=QUARANTINED_STATE_NAME, message=message, data=data)
    return Completed(message=message, data=data)

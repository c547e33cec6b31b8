"""Prefect artifacts for ingest results: one table per batch, one markdown report per failed file."""

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
    "create_outcome_table",
    "create_result_table",
    "failure_report_markdown",
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
                "name": f"… {summary.count - summary.listed} more not listed (list truncated): {summary.line()}",
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
    if outcome.status == QUARANTINED:
        headline = "was refused and kept in the error store"
    elif outcome.status == FAILED:
        headline = "could not be processed (system error); the landing object was kept for a retry"
    else:
        headline = f"finished with status '{outcome.status}'"
    lines = [
        f"# `{_cell(outcome.name)}` {headline}",
        "",
        "## Reason",
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
        lines += ["", "## Files", "", "| name | check passed | publish type | destination | stored | archived |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in outcome.files:
            lines.append("| " + " | ".join(_cell(row.get(column)) for column in (
                "name", "check_passed", "publish_type", "dest_path", "stored", "archived")) + " |")
    return "\n".join(lines) + "\n"


def create_failure_report(outcome: FileOutcome, key: str | None = None) -> UUID:
    """Create a Prefect markdown artifact explaining why ``outcome`` failed or was quarantined."""
    return create_markdown_artifact(
        failure_report_markdown(outcome),
        key=sanitise_key(key),
        description=f"{outcome.status}: {outcome.name}",
        _sync=True,  # type: ignore[call-arg]
    )

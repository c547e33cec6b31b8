"""Serve the ingest flows as deployments: a periodic scan of the landing area, and event-triggered single files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prefect import serve

from aodncore.prefect.flows import ingest_file, ingest_landing
from aodncore.prefect.triggers import ingest_file_trigger

__all__ = ["build_deployments", "serve_deployments"]


def build_deployments(
    sources: Sequence[str],
    *,
    name: str = "aodncore",
    interval: int = 300,
    parameters: Mapping[str, Any] | None = None,
    workers: int = 4,
) -> list[Any]:
    """The two deployments: ``ingest-landing/<name>`` on an interval, ``ingest-file/<name>`` on S3 events."""
    common = {key: value for key, value in (parameters or {}).items() if value is not None}
    landing = ingest_landing.to_deployment(
        name=name,
        interval=interval,
        parameters={**common, "source": list(sources), "workers": workers},
        description="Scan the landing area and ingest everything new.",
    )
    on_event = ingest_file.to_deployment(
        name=name,
        triggers=[ingest_file_trigger()],
        parameters=common,
        description="Ingest one landing object announced by an S3 event (see aodncore.prefect.triggers).",
    )
    return [landing, on_event]


def serve_deployments(sources: Sequence[str], **options: Any) -> None:
    """Create the deployments and serve them until interrupted (Ctrl-C)."""
    serve(*build_deployments(sources, **options))

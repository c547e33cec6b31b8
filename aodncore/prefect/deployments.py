"""Deploy the ingest flows: a periodic scan of the landing area, and event-triggered single files.

Two ways, the same two deployments (:func:`build_deployments`):

* **serve** (:func:`serve_deployments`, ``aodncore serve``): this process polls for the runs and executes them.
  When it stops (Ctrl-C or SIGTERM) the deployments are paused and the event triggers' automations disabled, so
  nothing creates runs that nobody executes (no *Late* runs pile up); serving again re-enables them.
* **work pool** (:func:`deploy_to_work_pool`): the deployments are registered for a work pool and any
  ``prefect worker start --pool NAME`` on a machine with aodncore installed runs them. The entry point is the
  *module path* (``aodncore.prefect.flows.ingest_landing``), so no source checkout or image is needed.
  ``ingest_landing.deploy(...)`` refuses this ("Either an image or remote storage location must be provided"):
  ``deploy`` is for code it must ship; installed code is registered with ``to_deployment(...).apply()``, as here.

The interval deployment runs one scan at a time (a deployment concurrency limit of 1 that cancels a new run
while one is still going), and the ingest-file trigger fires only for objects under the served S3 prefixes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType

from aodncore.prefect.credentials import refuse_secrets_in_parameters
from aodncore.prefect.flows import ingest_file, ingest_landing
from aodncore.prefect.triggers import ingest_file_trigger, split_s3_source

__all__ = ["build_deployments", "deploy_to_work_pool", "disable_triggers", "serve_deployments"]

logger = logging.getLogger(__name__)

ONE_SCAN_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def _triggers(sources: Sequence[str]) -> list[Any]:
    """One trigger per served S3 prefix (local folders get no S3 events)."""
    return [ingest_file_trigger(*split_s3_source(source)) for source in sources if source.startswith("s3://")]


def build_deployments(
    sources: Sequence[str],
    *,
    name: str = "aodncore",
    interval: int = 300,
    parameters: Mapping[str, Any] | None = None,
    workers: int | None = None,
    module_entrypoint: bool = False,
) -> list[Any]:
    """The two deployments: ``ingest-landing/<name>`` on an interval (one scan at a time) and
    ``ingest-file/<name>`` on S3 events under ``sources``; ``module_entrypoint`` for work pools."""
    common = {key: value for key, value in (parameters or {}).items() if value is not None}
    refuse_secrets_in_parameters({"source": list(sources), **common})
    entry = {"entrypoint_type": EntrypointType.MODULE_PATH} if module_entrypoint else {}
    landing = ingest_landing.to_deployment(
        name=name,
        interval=interval,
        parameters={**common, "source": list(sources), "workers": workers},
        description="Scan the landing area and ingest everything new.",
        concurrency_limit=ONE_SCAN_AT_A_TIME,
        **entry,
    )
    on_event = ingest_file.to_deployment(
        name=name,
        triggers=_triggers(sources),
        parameters=common,
        description="Ingest one landing object announced by an S3 event (see aodncore.prefect.triggers).",
        **entry,
    )
    return [landing, on_event]


def deploy_to_work_pool(sources: Sequence[str], work_pool_name: str, **options: Any) -> list[Any]:
    """Register both deployments for ``work_pool_name`` (module entry points: no image, no source checkout);
    returns their ids. Start ``prefect worker start --pool <work_pool_name>`` where aodncore is installed."""
    return [deployment.apply(work_pool_name=work_pool_name)
            for deployment in build_deployments(sources, module_entrypoint=True, **options)]


def disable_triggers(deployment_names: Sequence[str]) -> int:
    """Pause the automations behind the event triggers of these deployments (``flow/deployment`` names);
    returns how many were paused."""
    from prefect.client.orchestration import get_client

    paused = 0
    with get_client(sync_client=True) as client:
        for full_name in deployment_names:
            try:
                deployment = client.read_deployment_by_name(full_name)
            except Exception as error:  # noqa: BLE001 - e.g. deleted meanwhile
                logger.warning("cannot read deployment %s: %s", full_name, error)
                continue
            for automation in client.read_resource_related_automations(f"prefect.deployment.{deployment.id}"):
                if automation.enabled:
                    client.pause_automation(automation.id)
                    paused += 1
    return paused


def serve_deployments(sources: Sequence[str], **options: Any) -> None:
    """Create the deployments and serve them until interrupted (Ctrl-C or SIGTERM); on the way out pause them
    and disable their event triggers."""
    deployments = build_deployments(sources, **options)
    try:
        serve(*deployments, pause_on_shutdown=True)
    finally:
        names = [f"{flow.name}/{deployment.name}" for flow, deployment in
                 ((ingest_landing, deployments[0]), (ingest_file, deployments[1]))]
        try:
            count = disable_triggers(names)
            logger.info("serving stopped: deployments paused, %d event trigger(s) disabled", count)
        except Exception as error:  # noqa: BLE001 - the server may be gone too
            logger.warning("could not disable the event triggers of %s: %s", ", ".join(names), error)

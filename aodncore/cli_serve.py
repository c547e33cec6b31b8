"""``aodncore serve`` and ``aodncore bridge-sqs``: the long-running commands of a Prefect deployment."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from aodncore.cli_output import EXIT_OK, EXIT_REFUSED, console, fail_usage

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``bridge-sqs`` to ``app``."""
    app.command(epilog="Exit codes: 0 stopped cleanly; 2 usage or configuration error.")(serve)
    app.command("bridge-sqs", epilog=BRIDGE_EXIT_CODES_HELP)(bridge_sqs)


def serve(
    source: Annotated[list[str], typer.Argument(help="landing folder(s) or s3:// prefix(es) to poll")],
    name: Annotated[str, typer.Option(help="deployment name")] = "aodncore",
    interval: Annotated[int, typer.Option(min=10, help="seconds between scans of the landing area")] = 300,
    handler: Annotated[str | None, typer.Option(help="handler entry-point name or MODULE:CLASS")] = None,
    config: Annotated[str | None, typer.Option("--config", help="pipeline config JSON file")] = None,
    base_dir: Annotated[str | None, typer.Option(help="base folder of the embedded default stores")] = "aodn-data",
    check: Annotated[list[str] | None, typer.Option("--check", help="compliance suite (repeatable)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=16, help="files processed in parallel (default: the "
                                                "cores available where the runs execute)")] = None,
    settle: Annotated[
        float | None,
        typer.Option(
            "--settle",
            min=0,
            metavar="SECONDS",
            help="take a local file only once unchanged this long (default: limits.landing_settle_seconds of the "
            "config, else 30); files still settling are left to the next scan",
        ),
    ] = None,
) -> None:
    """Serve deployments: scan the landing area every INTERVAL seconds, and ingest files announced by S3 events.

    The ingest-file deployment runs on Prefect events named aodncore.s3.object.created for objects under the
    served s3:// prefixes (see aodncore.prefect.triggers); one scan runs at a time. Stop with Ctrl-C or SIGTERM:
    the deployments are paused and their event triggers disabled, so no runs pile up while nobody serves them.
    """
    from aodncore.prefect.runtime import prepare_prefect_environment

    prepare_prefect_environment()
    from aodncore.prefect.deployments import serve_deployments

    serve_deployments(
        sources=source,
        name=name,
        interval=interval,
        parameters=dict(handler=handler, config_file=config, base_dir=base_dir, checks=check, settle_seconds=settle),
        workers=workers,
    )


BRIDGE_EXIT_CODES_HELP = (
    "Exit codes: 0 stopped (Ctrl-C, SIGTERM, or --max-batches done); 1 the queue or the Prefect server cannot be "
    "reached (messages stay queued: restart it, e.g. under systemd); 2 usage or configuration error (bad queue URL, "
    "no such queue, no access, no PREFECT_API_URL)."
)


def bridge_sqs(
    queue_url: Annotated[str, typer.Argument(help="SQS queue receiving the landing bucket's S3 notifications")],
    wait: Annotated[int, typer.Option(min=0, max=20, metavar="SECONDS", help="long-poll time of each receive")] = 20,
    max_batches: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="stop after N receive calls (default: run until stopped)")
    ] = None,
) -> None:
    """Forward S3 notifications from an SQS queue to the Prefect server as aodncore.s3.object.created events.

    The served ingest-file deployments (aodncore serve s3://...) run on those events. At least once: a message is
    deleted only after the server accepted its events, so stopping or an outage loses nothing (a message may come
    again; its duplicate run is a no-op). The Prefect server is PREFECT_API_URL; AWS credentials and region come
    from the standard AWS chain (the region also from the queue URL).
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aodncore").setLevel(logging.INFO)
    from aodncore.prefect.sqsbridge import BridgeConfigurationError, BridgeUnavailableError, run_bridge

    try:
        forwarded = run_bridge(queue_url, wait_seconds=wait, max_batches=max_batches)
    except KeyboardInterrupt:
        console.print("bridge-sqs stopped", markup=False, highlight=False)
        raise typer.Exit(EXIT_OK) from None
    except BridgeConfigurationError as error:
        raise fail_usage(error) from None
    except BridgeUnavailableError as error:
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from None
    console.print(f"bridge-sqs stopped after {max_batches} batch(es): {forwarded} object(s) forwarded",
                  markup=False, highlight=False)

"""The ``aodncore`` command: ingest files through a Prefect flow, check files, list handlers, serve deployments.

Prefect is imported only by the commands that need it, so ``aodncore --help`` and ``aodncore check`` stay fast.
Exit codes: 0 success, 1 some file was refused (quarantined) or failed, 2 usage or configuration error.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aodncore.cli_output import EXIT_CODES_HELP, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, UsageError, console, out
from aodncore.cli_output import configuration_errors as _configuration_errors
from aodncore.cli_output import fail_usage as _fail_usage

__all__ = ["app", "main"]

app = typer.Typer(
    name="aodncore",
    help="Ingest ocean-data files: resolve, check, publish — or quarantine with a reason. Nothing is lost.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _configure_console_logging(verbose: bool) -> None:
    """Library records go to the Prefect run log always, and to the console only with ``--verbose``."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    library_logger = logging.getLogger("aodncore")
    library_logger.setLevel(logging.INFO)
    library_logger.propagate = verbose


def _print_plain(line: str) -> None:
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_outcomes(result: Any) -> None:
    """A table on a terminal; one plain line per file otherwise (logs, CI), so nothing is folded. Then one line
    per summarised reason whose entries are not all listed (already ingested, ignored), and the counts.

    Outcome texts are already shown escaped (one line each); cells are plain text, never console markup.
    """
    from aodncore.ingest.summary import count_line, outcome_line

    if out.is_terminal:
        out.print(_outcome_table(result.outcomes))
    else:
        for outcome in result.outcomes:
            _print_plain(outcome_line(outcome))
    for line in result.truncation_lines():
        _print_plain(line)
    _print_plain(count_line(result.counts) + _how_to_see_all(result))


def _how_to_see_all(result: Any) -> str:
    """What the count line adds: where every entry is (the report), or how to get them all listed."""
    if result.report_path:
        return f" — every entry is in the report {result.report_path}"
    if result.truncated:
        return " — not every entry is listed; a run with `--report FILE` writes every one"
    return ""


def _outcome_table(outcomes: list[Any]) -> Table:
    from rich.text import Text

    table = Table(title="ingest summary", show_lines=False)
    for column in ("file", "status", "check", "publish type", "destination / error store", "error / note"):
        table.add_column(column, overflow="fold")
    colours = {"published": "green", "quarantined": "yellow", "failed": "red", "skipped": "dim", "waiting": "cyan",
               "ignored": "dim"}
    for outcome in outcomes:
        table.add_row(
            Text(outcome.name),
            Text(outcome.status, style=colours.get(outcome.status, "white")),
            Text(outcome.check_result),
            Text(outcome.publish_type),
            Text(outcome.error_uri or outcome.destination),
            Text((outcome.error or outcome.note or "")[:300]),
        )
    return table


@app.command(epilog=EXIT_CODES_HELP)
def ingest(
    sources: Annotated[list[str], typer.Argument(help="files, folders or s3://bucket/prefix to ingest")],
    handler: Annotated[
        str | None, typer.Option(help="handler entry-point name or MODULE:CLASS (default: ImosGenericHandler)")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="pipeline config JSON file (default: embedded)")
    ] = None,
    base_dir: Annotated[str | None, typer.Option(help="base folder of the embedded default stores")] = "aodn-data",
    upload_uri: Annotated[str | None, typer.Option(help="published store URI (file://, s3://, sftp://)")] = None,
    archive_uri: Annotated[str | None, typer.Option(help="archive store URI")] = None,
    error_uri: Annotated[str | None, typer.Option(help="error store URI")] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="compliance suite, e.g. cf:1.6 (repeatable)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="files processed in parallel (at most 16 unless --dask ADDRESS; default: "
                     "the cores available)"),
    ] = None,
    keep_landing: Annotated[bool, typer.Option(help="do not remove ingested files from the landing area")] = False,
    reingest: Annotated[bool, typer.Option(help="process files even if the same content was ingested before")] = False,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS|local",
            help="run on Dask: 'local' starts WORKERS single-threaded worker processes, or the scheduler "
            "address of an existing cluster (tcp://host:8786; one thread per worker, same PREFECT_API_URL)",
        ),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option("--notify", help="recipient told about refused or failed files, e.g. email:ops@example.org"),
    ] = None,
    handler_param: Annotated[
        list[str] | None,
        typer.Option(
            "--handler-param",
            metavar="KEY=VALUE",
            help="handler constructor parameter (repeatable); VALUE is parsed as JSON when it parses, else taken "
            "as a string: include_regexes='[\"IMOS_.*\\.nc\"]', archive_input_file=false, harvest_type=csv",
        ),
    ] = None,
    settle: Annotated[
        float | None,
        typer.Option(
            "--settle",
            min=0,
            metavar="SECONDS",
            help="take a local file only once unchanged this long; fresher files are looked at again within the "
            "run (default: limits.landing_settle_seconds of the config, else 10)",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="list what would be ingested, skipped, waiting or ignored; change nothing"),
    ] = False,
    report: Annotated[
        str | None,
        typer.Option(
            "--report",
            metavar="FILE",
            help="write one JSON line per entry (every status) to FILE as the run goes; the summary lists only the "
            "first 20 published, already ingested or ignored entries of each kind",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show log lines on the console")] = False,
) -> None:
    """Ingest files through the ingest-landing Prefect flow; print a per-file summary.

    With a Prefect server configured (PREFECT_API_URL) the flow-run URL is printed first.
    """
    if dry_run:
        _configure_console_logging(verbose)
        if report is not None:
            raise _fail_usage(UsageError("--report is for a real run; --dry-run lists every entry on the console"))
        raise typer.Exit(_dry_run(sources, dict(handler=handler, config_file=config, base_dir=base_dir,
                                                upload_uri=upload_uri, archive_uri=archive_uri, error_uri=error_uri),
                                  settle=settle, skip_ingested=not reingest))
    # the API server (background or ephemeral) starts now, in parallel with validating the options and importing
    # Prefect; with the user's PREFECT_API_URL nothing is started
    api = _start_prefect_api()
    if not verbose:
        from aodncore.prefect.runtime import quiet_prefect_console

        quiet_prefect_console()
    _configure_console_logging(verbose)

    try:
        dask = (dask or "").strip() or None
        if workers is not None and workers > 16 and dask in (None, "local"):
            raise UsageError(f"--workers {workers}: at most 16 unless --dask names an existing cluster")
        if dask is not None:
            _check_dask_available()
        _check_sources(sources)
        report_path = _check_report(report, sources)
        settings_options: dict[str, Any] = dict(
            handler=handler,
            config_file=config,
            base_dir=base_dir,
            upload_uri=upload_uri,
            archive_uri=archive_uri,
            error_uri=error_uri,
            checks=check,
            handler_params=_handler_params(handler_param, notify),
        )
        # validate everything before running the flow so that mistakes give one clear line
        from aodncore.prefect.credentials import refuse_secrets_in_parameters

        refuse_secrets_in_parameters({"source": list(sources), **settings_options})
        settle_seconds = _validate_settings(settings_options, settle)
    except _configuration_errors() as error:
        api.release()
        raise _fail_usage(error) from None

    try:
        result = _run_ingest_flow(
            sources,
            dict(
                settings_options,
                workers=workers,
                delete_landing=not keep_landing,
                skip_ingested=not reingest,
                dask_address=dask,
                settle_seconds=settle_seconds,
                settle_wait=True,
                report_path=report_path,
            ),
            api,
            # a server that outlives the run: its page is worth printing (not an ephemeral one's)
            show_run_url=api.mode in ("user", "background"),
        )
    finally:
        api.release()
    _print_outcomes(result)
    if result.counts["quarantined"] or result.counts["failed"]:
        raise typer.Exit(EXIT_REFUSED)


def _check_sources(sources: list[str]) -> None:
    for source in sources:
        if not source.startswith("s3://") and not os.path.exists(source.removeprefix("file://")):
            raise UsageError(f"source '{source}' does not exist")


def _check_report(report: str | None, sources: list[str]) -> str | None:
    """The absolute path of ``--report FILE``, checked before the run (a bad path is a one-line usage error)."""
    if report is None:
        return None
    from aodncore.ingest.report import check_report_path

    return check_report_path(report, sources)


def _dry_run(sources: list[str], options: dict[str, Any], *, settle: float | None, skip_ingested: bool) -> int:
    """Print what an ingest would do with each landing entry; create, change and remove nothing (no Prefect)."""
    from collections import Counter

    from aodncore.ingest.configure import open_existing_ledger, planning_config
    from aodncore.ingest.plan import plan_landing, resolve_settle_seconds
    from aodncore.ingest.summary import count_line, plan_line
    from aodncore.limits import CLI_SETTLE_SECONDS

    try:
        _check_sources(sources)
        config = planning_config(**options)
        ledger = open_existing_ledger(config, options.get("base_dir")) if skip_ingested else None
    except _configuration_errors() as error:
        raise _fail_usage(error) from None
    counts: Counter[str] = Counter()
    try:
        settle_seconds = resolve_settle_seconds(config, settle, CLI_SETTLE_SECONDS)
        for item in plan_landing(sources, settle_seconds=settle_seconds, ledger=ledger):
            counts[item.status] += 1
            _print_plain(plan_line(item))
    except _configuration_errors() as error:
        raise _fail_usage(error) from None
    finally:
        if ledger is not None:
            ledger.close()
    _print_plain(f"dry run (settle time {settle_seconds:g} s), nothing changed: "
                 f"{count_line(counts.elements(), empty='nothing found')}")
    return EXIT_OK


def _start_prefect_api() -> Any:
    """Start (or find) this run's Prefect API without waiting for it; server setting mistakes are usage errors."""
    from aodncore.prefect.localserver.control import ServerStartError
    from aodncore.prefect.localserver.settings import ServerSettingError
    from aodncore.prefect.runtime import start_prefect_api

    try:
        return start_prefect_api()
    except ServerSettingError as error:
        raise _fail_usage(UsageError(str(error))) from None
    except (ServerStartError, OSError) as error:
        console.print(f"error: could not start the Prefect API server: {error}", markup=False, highlight=False,
                      soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from None


def _validate_settings(settings_options: dict[str, Any], settle: float | None = None) -> float:
    """Build the ingest settings once (config, handler, stores) and the compliance checker, to report mistakes;
    return the settle time in force (``--settle``, else the config's, else the one-shot default)."""
    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.plan import resolve_settle_seconds
    from aodncore.limits import CLI_SETTLE_SECONDS

    settings = build_settings(**settings_options)
    if settings.ledger is not None:
        settings.ledger.close()  # the flow opens its own
    if settings.handler_kwargs:
        from aodncore.ingest.handlerparams import probe_handler

        try:
            probe_handler(settings)
        except ValueError as error:
            raise UsageError(str(error)) from None
    checks = settings_options.get("checks")
    if checks:
        from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner

        ComplianceCheckerCheckRunner(None, logging.getLogger("aodncore.cli"), {"checks": list(checks)})
    return resolve_settle_seconds(settings.config, settle, CLI_SETTLE_SECONDS)


def _handler_params(items: list[str] | None, recipients: list[str] | None) -> dict[str, Any] | None:
    """The handler's constructor parameters from ``--handler-param`` and ``--notify``."""
    from aodncore.ingest.handlerparams import parse_handler_params

    try:
        params = parse_handler_params(items)
    except ValueError as error:
        raise UsageError(f"--handler-param {error}") from None
    notify = _notify_params(recipients)
    if notify and "notify_params" in params:
        raise UsageError("give the recipients either with --notify or with --handler-param notify_params, not both")
    params.update(notify or {})
    return params or None


def _notify_params(recipients: list[str] | None) -> dict[str, Any] | None:
    """Handler parameters notifying ``recipients`` of every refused (data error) or failed (system error) file."""
    if not recipients:
        return None
    from aodncore.pipeline.common import NotificationRecipientType
    from aodncore.pipeline.steps.notify import NotificationRecipient

    for recipient in recipients:
        if NotificationRecipient.from_string(recipient).notify_type is NotificationRecipientType.INVALID:
            raise UsageError(f"--notify '{recipient}': expected protocol:address, e.g. email:ops@example.org")
    return {
        "notify_params": {
            "error_notify_list": list(recipients),
            "owner_notify_list": list(recipients),
        }
    }


def _drain_prefect_workers(timeout: float = 15.0) -> None:
    """Deliver Prefect's queued logs and events before this process (and its API server) stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - history is best effort; the ingest record is ours
            logging.getLogger("aodncore.cli").warning("could not flush Prefect %s: %s", worker.__name__, error)


def _check_dask_available() -> None:
    import importlib.util

    for module in ("distributed", "prefect_dask"):
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"--dask needs the '{module}' package (pip install 'aodncore[dask]')")


def _quiet_prefect_queue_warnings() -> None:
    """Prefect's log and event queues warn "Still processing items" while they drain at exit; the CLI drains
    them itself (:func:`_drain_prefect_workers`), so those progress warnings are noise on the console."""
    for name in ("EventsWorker", "APILogWorker"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_ingest_flow(sources: list[str], parameters: dict[str, Any], api: Any, show_run_url: bool = False
                     ) -> Any:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from aodncore.ingest import progress as ingest_progress
    from aodncore.ingest.result import IngestResult
    from aodncore.prefect.flows import ingest_landing
    from aodncore.prefect.localserver.control import ServerStartError
    from aodncore.prefect.runtime import end_of_startup, import_run_modules, one_shot_run_settings

    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    # no column shows a speed: keep rich's speed samples to the last second (it holds up to 1,000 otherwise)
    with Progress(*columns, console=console, transient=False, speed_estimate_period=1.0) as bar:
        task_id = bar.add_task("starting Prefect…", total=None)

        def on_event(event: str, payload: Any) -> None:
            if event == "planned":
                if show_run_url:
                    _print_run_url(bar.console)
                bar.update(task_id, total=payload, description="")
            elif event == "settling":
                bar.update(task_id, description=f"waiting for {payload} file(s) to settle…")
            elif event == "done":
                bar.update(task_id, advance=1, description=escape(payload.name))
            elif event == "counted":  # entries finished without an outcome of their own (summarised)
                bar.update(task_id, advance=payload)

        ingest_progress.add_listener(on_event)
        _quiet_prefect_queue_warnings()
        try:
            import_run_modules()  # the flow's lazy imports, while the server may still be starting
            end_of_startup()
            try:
                api_url = api.wait()
            except ServerStartError as error:
                console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_REFUSED) from None
            # a one-shot run in this process: no crash-detection heartbeat (it costs ~1 s at the end of a flow)
            with one_shot_run_settings(api_url):
                state = ingest_landing(sources, return_state=True, **parameters)
                _drain_prefect_workers()
        finally:
            ingest_progress.remove_listener(on_event)
    try:
        result = state.result(raise_on_failure=False)  # a Failed run (some file failed) still has its outcomes
    except Exception as error:  # noqa: BLE001 - the result itself could not be read
        result = error
    if isinstance(result, _configuration_errors()):
        raise _fail_usage(result)
    if isinstance(result, BaseException) or not isinstance(result, dict):
        detail = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else state.message
        console.print(f"[red]ingest flow failed:[/red] {detail}", markup=True, highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    return IngestResult.from_dict(result)


def _print_run_url(target: Console) -> None:
    """The flow run's page in the Prefect UI (called inside the run)."""
    from prefect.runtime import flow_run

    url = flow_run.ui_url
    if url:
        target.print(f"flow run: {url}", markup=False, highlight=False, soft_wrap=True)


@app.command(epilog="Exit codes: 0 every file passed; 1 some file failed; 2 usage error.")
def check(
    files: Annotated[list[str], typer.Argument(help="files to check")],
    check: Annotated[
        list[str] | None, typer.Option("--check", help="compliance suite (repeatable), e.g. imos:1.4")
    ] = None,
    criteria: Annotated[str, typer.Option(help="lenient, normal or strict")] = "normal",
    skip_check: Annotated[list[str] | None, typer.Option("--skip-check", help="check method to skip")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="print the full check log of every file")] = False,
    legacy_cf_verdicts: Annotated[bool, typer.Option(
        "--legacy-cf-verdicts", help="skip the CF checks compliance-checker 5.0.1 did not have")] = False,
) -> None:
    """Check files (format, or compliance suites with --check) and report; no Prefect involved."""
    from aodncore.pipeline.files import PipelineFileCollection
    from aodncore.pipeline.steps.check import CheckRunnerAdapter

    logger = logging.getLogger("aodncore.cli")
    params: dict[str, Any] = {"criteria": criteria}
    if check:
        params["checks"] = list(check)
    if skip_check:
        params["skip_checks"] = list(skip_check)
    if legacy_cf_verdicts:
        params["legacy_cf_verdicts"] = True
    try:
        missing = [path for path in files if not os.path.isfile(path)]
        if missing:
            raise UsageError(f"no such file: {', '.join(missing)}")
        if criteria not in ("lenient", "normal", "strict"):
            raise UsageError(f"criteria must be lenient, normal or strict, not '{criteria}'")
        collection = PipelineFileCollection([os.path.abspath(path) for path in files], validate_unique=False)
        collection.set_default_check_types(params)
        adapter = CheckRunnerAdapter(None, logger, params)
    except _configuration_errors() as error:
        raise _fail_usage(error) from None
    from aodncore.pipeline.exceptions import ComplianceCheckFailedError, InvalidCheckSuiteError

    try:
        adapter.run(collection)
    except ComplianceCheckFailedError:
        pass
    except InvalidCheckSuiteError as error:
        raise _fail_usage(error) from None

    table = Table(title="check results")
    for column in ("file", "check", "result"):
        table.add_column(column, overflow="fold")
    failed = 0
    for pipeline_file in collection:
        passed = bool(pipeline_file.check_result and pipeline_file.check_result.compliant)
        failed += not passed
        table.add_row(
            pipeline_file.name, pipeline_file.check_type.name, "[green]pass[/green]" if passed else "[red]FAIL[/red]"
        )
    out.print(table)
    for pipeline_file in collection:
        result = pipeline_file.check_result
        if result and (verbose or not result.compliant) and result.log:
            out.rule(pipeline_file.name)
            out.print("\n".join(result.log), markup=False, highlight=False)
    raise typer.Exit(EXIT_REFUSED if failed else EXIT_OK)


@app.command()
def handlers() -> None:
    """List installed handlers and destination path functions (entry points)."""
    from aodncore.util.misc import discover_entry_points

    for title, group in (("handlers", "pipeline.handlers"), ("path functions", "pipeline.path_functions")):
        loaded, failed = discover_entry_points(group)
        table = Table(title=f"{title} ({group})")
        table.add_column("name")
        table.add_column("object")
        for name, obj in sorted(loaded.items()):
            table.add_row(name, _describe_entry_point_object(obj))
        for name in failed:
            table.add_row(name, "[red]failed to load[/red]")
        out.print(table)


def _describe_entry_point_object(obj: object) -> str:
    """``module.Name`` of a loaded entry point; a ``functools.partial`` is shown with the names of its presets."""
    from aodncore.pipeline.handlerref import unwrap_handler_class

    target = unwrap_handler_class(obj)
    text = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"
    if target is not obj:
        presets = ", ".join(sorted(getattr(obj, "keywords", {}) or {}))
        text += f" (partial: {presets})" if presets else " (partial)"
    return text


def _add_long_running_commands() -> None:
    from aodncore import cli_serve
    from aodncore.cli_server import server_app

    cli_serve.register(app)
    app.add_typer(server_app, name="server")


_add_long_running_commands()


def _usage_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) of the command-line parser: typer >= 0.29 vendors its own click, older typer uses
    the ``click`` package; accept both."""
    import click

    usage: list[type[BaseException]] = [click.ClickException]
    aborts: list[type[BaseException]] = [click.exceptions.Abort]
    if hasattr(typer, "TyperException"):
        usage.append(typer.TyperException)
    if typer.Abort is not click.exceptions.Abort:
        aborts.append(typer.Abort)
    return tuple(usage), tuple(aborts)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aodncore`` console script; returns the exit code."""
    usage_errors, aborts = _usage_exceptions()
    try:
        result = app(args=argv, standalone_mode=False)
    except aborts:
        console.print("aborted")
        return EXIT_REFUSED
    except usage_errors as error:
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

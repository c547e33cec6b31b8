"""``aodncore server status|start|stop``: the background Prefect server of the current ``PREFECT_HOME``."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["EXIT_NOT_RUNNING", "server_app"]

EXIT_NOT_RUNNING = 3
"""``aodncore server status`` exit code when no server runs (as ``systemctl status`` uses it)."""

server_app = typer.Typer(
    name="server",
    help="The background Prefect server that `aodncore ingest` starts and reuses (one per PREFECT_HOME).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def _home() -> Path:
    from aodncore.prefect.runtime import default_prefect_home

    return Path(os.environ.get("PREFECT_HOME") or default_prefect_home()).expanduser().absolute()


def _print(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _user_server_note() -> None:
    from aodncore.prefect.runtime import user_api_url_configured

    if user_api_url_configured():
        err.print("note: PREFECT_API_URL is configured, so `aodncore ingest` uses that server, not this one",
                  markup=False, highlight=False, soft_wrap=True)


@server_app.command()
def status(
    url: Annotated[bool, typer.Option("--url", help="print only the API URL (for PREFECT_API_URL=...)")] = False,
) -> None:
    """Is the background server running; where are its API, UI, database and log. Exit 3 when not running."""
    from aodncore.prefect.localserver.control import server_status

    current = server_status(_home())
    if url:
        if not current.running or current.state is None:
            raise typer.Exit(EXIT_NOT_RUNNING)
        _print(current.state.api_url)
        return
    paths = current.paths
    if not current.running or current.state is None:
        _print(f"not running (PREFECT_HOME {paths.home})")
    else:
        state = current.state
        since = datetime.datetime.fromtimestamp(state.started).isoformat(timespec="seconds")
        if current.identity is None:
            _print(f"starting (pid {state.pid}, since {since})")
        else:
            idle = current.identity.get("idle_for", 0.0)
            timeout = f"stops after {state.idle_timeout:.0f} s idle" if state.idle_timeout else "no idle shutdown"
            _print(f"running (pid {state.pid}, since {since}; idle {idle:.0f} s, {timeout})")
        _print(f"API:          {state.api_url}")
        _print(f"UI:           {state.ui_url}")
        runner = current.runner_pid
        ready = "ready" if current.runner_ready() else "starting"
        _print(f"warm runner:  {f'{ready} (pid {runner})' if runner else 'not running'}")
    _print(f"PREFECT_HOME: {paths.home}")
    _print(f"database:     {paths.database}")
    _print(f"log:          {paths.log_file}")
    if current.running and current.state is not None:
        _print(f"use it:       PREFECT_API_URL={current.state.api_url} prefect flow-run ls")
    _user_server_note()
    if not current.running:
        raise typer.Exit(EXIT_NOT_RUNNING)


@server_app.command()
def start() -> None:
    """Start the background server now (runs start it when needed) and wait until it answers."""
    from aodncore.prefect.localserver.control import BackgroundServer, ServerStartError

    server = BackgroundServer(_home())
    try:
        server.start().wait()
    except (ServerStartError, TimeoutError) as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        server.release()
    assert server.state is not None
    _print(f"{'started' if server.launched else 'already running'}: {server.state.ui_url} (pid {server.state.pid})")
    _user_server_note()


@server_app.command()
def stop() -> None:
    """Stop the background server (runs in progress lose it: their flow runs end as crashed)."""
    from aodncore.prefect.localserver.control import stop_server

    stopped = stop_server(_home())
    _print(f"stopped (pid {stopped.pid})" if stopped else "not running")

"""The background server process: Prefect's API and UI on a loopback socket, with idle shutdown and a warm runner.

Started by :func:`aodncore.prefect.localserver.control.ensure_server` as
``python -P -m aodncore.prefect.localserver.supervisor --listen-fd N --home HOME --token T``, in a session of its
own, with stdin from ``/dev/null`` and stdout/stderr appended to ``server.log``: it never holds the starting
terminal or the caller's pipes. The caller binds the listening socket (so the port is known, and reserved, before
this process has imported anything) and passes it down.

Start-up is trimmed to what the first request needs: a new home's database comes from the shipped template
(:mod:`.dbtemplate`), migrations are skipped on a current database, the cyclic garbage collector is off while the
server modules load, and block-type registration (~1 s) and the warm runner wait until the API has been idle for a
moment with no run in progress, so they never delay a run. Prefect's services that a local ingest does not use stay
off (see :data:`aodncore.prefect.runtime.DEFAULT_PREFECT_ENV`); the task-run recorder, event persister and event
vacuum run.

It stops on SIGTERM/SIGINT (``aodncore server stop``), when nothing used it for ``--idle-timeout`` seconds (no
API request, no open websocket, and no run holding ``runs.lock``), and when its home is gone: the state folder was
removed or replaced, or ``server.json`` names another server (:class:`HomeWatch`; no run could find it any more).
On the way out it removes ``server.json`` if it still names this server.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aodncore.prefect.localserver import (
    dbtemplate,
    fastdocket,
    fastevents,
    fastlogs,
    fastmiddleware,
    fastroutes,
)
from aodncore.prefect.localserver.settings import warm_runner_enabled
from aodncore.prefect.localserver.state import FileLock, ServerPaths, read_state, remove_state

logger = logging.getLogger("aodncore.prefect.localserver")

SETTLE_SECONDS = 0.5
"""The API must be quiet this long, with no run in progress, before deferred start-up work (block registration,
the warm runner) begins."""

SETTLE_POLL = (0.1, 1.0)
"""How often the API's quiet is looked at (in memory) and the longest pause between two probes of ``runs.lock`` while
a run holds it (each probe also reads ``server.json``: ~5 ms of CPU per second at ten a second, for as long as the
first run lasts)."""

RUNNER_RESTARTS = 5
"""The warm runner is restarted at most this many times (it exits when the installed code changes)."""


def _user_value(*names: str) -> str | None:
    for name in names:
        if name in os.environ:
            return os.environ[name]
    return None


def _as_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on", "t", "y")


_REGISTER = ("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "PREFECT_API_BLOCKS_REGISTER_ON_START")
_MEMOIZE = ("PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION")
_MIGRATE = ("PREFECT_SERVER_DATABASE_MIGRATE_ON_START", "PREFECT_API_DATABASE_MIGRATE_ON_START")
_DATABASE_URL = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def prepare_environment(paths: ServerPaths, port: int) -> dict[str, bool]:
    """Set this process's Prefect settings (before Prefect is imported); the block-registration wishes of the user."""
    from aodncore.prefect.runtime import DEFAULT_PREFECT_ENV

    url = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_HOME"] = str(paths.home)
    os.environ["PREFECT_API_URL"] = url
    os.environ.setdefault("PREFECT_UI_API_URL", url)
    os.environ["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    os.environ["PREFECT_SERVER_API_PORT"] = str(port)
    for name, value in DEFAULT_PREFECT_ENV.items():
        os.environ.setdefault(name, value)
    fastevents.apply_persister_defaults()

    if _user_value(*_DATABASE_URL) is None:
        created = dbtemplate.create_database_from_template(paths.database)
        head = dbtemplate.installed_migration_head()
        if created:
            logger.info("database %s created from the template at revision %s%s", paths.database, created,
                        "" if created == head else f"; Prefect migrates it on to its revision {head}")
        if head is not None and dbtemplate.database_revision(paths.database) == head and \
                _user_value(*_MIGRATE) is None:
            os.environ[_MIGRATE[0]] = "false"

    wishes = {"register": _as_bool(_user_value(*_REGISTER), True), "memoize": _as_bool(_user_value(*_MEMOIZE), True)}
    os.environ[_REGISTER[0]] = "false"  # done later, when the API is idle (see _register_block_types)
    os.environ[_MEMOIZE[0]] = "false"
    return wishes


async def _register_block_types(wishes: dict[str, bool]) -> None:
    """Prefect's start-up block registration, run after start-up (memoized as Prefect does it)."""
    if not wishes["register"]:
        return
    from prefect.server.api import server as prefect_server
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration
    from prefect.settings import (
        PREFECT_API_BLOCKS_REGISTER_ON_START,
        PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION,
        temporary_settings,
    )

    async def register() -> None:
        db = provide_database_interface()
        async with await db.session() as session:
            await run_block_auto_registration(session=session)

    memoize = getattr(prefect_server, "_memoize_block_auto_registration", None)
    updates = {PREFECT_API_BLOCKS_REGISTER_ON_START: True, PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION: wishes["memoize"]}
    with temporary_settings(updates=updates):
        await (memoize(register) if memoize is not None else register)()


REMADE_BY_PREFECT = frozenset({"memo_store.toml"})
"""What Prefect writes by itself into a home folder it made again (see :meth:`HomeWatch.remove_remade_home`)."""


class HomeWatch:
    """Tells when the server's home is no longer its own: the state folder removed or replaced, or ``server.json``
    naming another server. Such a server serves nobody (runs find servers through that file) and must not stay."""

    def __init__(self, paths: ServerPaths, token: str) -> None:
        self.paths = paths
        self.token = token
        # held open, so the folder's inode cannot be reused by a new folder of the same name while we compare
        self._folder = os.open(paths.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._home = os.open(paths.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _stat(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.paths.directory)
        except OSError:
            return None
        return status.st_dev, status.st_ino

    def close(self) -> None:
        os.close(self._folder)
        os.close(self._home)

    def remove_remade_home(self) -> bool:
        """Once this server's processes have stopped: remove a home folder that was made again in place of the
        removed one, when it holds nothing but what Prefect puts there by itself (a warm runner importing Prefect
        makes a missing ``PREFECT_HOME``; block registration then writes its memo there); True if removed."""
        home = self.paths.home
        try:
            now = os.stat(home, follow_symlinks=False)
            ours = os.fstat(self._home)
            if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino) or not stat.S_ISDIR(now.st_mode) \
                    or now.st_uid != os.getuid():
                return False  # the home itself (only its state folder went), or not a folder of ours
            entries = os.listdir(home)
            if not set(entries) <= REMADE_BY_PREFECT:
                return False  # somebody's new home: never touched
            for name in entries:
                (home / name).unlink()
            home.rmdir()
        except OSError:
            return False
        return True

    def lost(self) -> str | None:
        """Why the home is lost, or None while it is still this server's."""
        now = self._stat()
        if now is None:
            return f"{self.paths.directory} was removed"
        ours = os.fstat(self._folder)
        if now != (ours.st_dev, ours.st_ino):
            return f"{self.paths.directory} was replaced"
        state = read_state(self.paths)
        if state is not None and state.token != self.token:
            return f"{self.paths.state_file} names another server (pid {state.pid})"
        return None


class _HomeLost(Exception):
    pass


class WarmRunner:
    """The warm-runner child process (see :mod:`.warmrunner`)."""

    def __init__(self, paths: ServerPaths, client_env: dict[str, str], log: Any) -> None:
        self.paths = paths
        # as a run sees it before it sets anything: the runner's fingerprint must match later runs'
        self.env = {**client_env, "PREFECT_HOME": str(paths.home)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "aodncore.prefect.localserver.warmrunner", "--home", str(self.paths.home),
             "--parent-pid", str(os.getpid())],
            env=self.env, cwd=self.paths.directory, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
        )
        logger.info("warm runner started (pid %d)", self.process.pid)

    def needs_restart(self) -> bool:
        return self.process is not None and self.process.poll() is not None and self.starts <= RUNNER_RESTARTS

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Supervisor:
    """Runs uvicorn with the Prefect app and the housekeeping task beside it."""

    def __init__(self, args: argparse.Namespace, client_env: dict[str, str]) -> None:
        self.paths = ServerPaths(Path(args.home))
        self.token = args.token
        self.idle_timeout = float(args.idle_timeout)
        self.listener = socket.socket(fileno=args.listen_fd)
        self.port = self.listener.getsockname()[1]
        self.client_env = client_env
        self.started = time.time()
        self.ready: float | None = None
        self.runner: WarmRunner | None = None
        self.tracker: Any = None
        self.server: Any = None
        self._runs_lock = FileLock(self.paths.runs_lock)
        self.home_watch = HomeWatch(self.paths, self.token)
        self.home_lost = False

    def identity(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "pid": os.getpid(),
            "home": str(self.paths.home),
            "started": self.started,
            "ready": self.ready,
            "idle_for": round(self.tracker.idle_for(), 1) if self.tracker else 0.0,
            "idle_timeout": self.idle_timeout,
            "runner_pid": self.runner.process.pid if self.runner and self.runner.process else None,
        }

    def build_app(self) -> Any:
        gc.disable()  # loading Prefect's server allocates a lot of long-lived objects; no cyclic GC meanwhile
        try:
            wishes = prepare_environment(self.paths, self.port)
            import uvicorn
            from prefect.server.api.server import create_app

            from aodncore.prefect.localserver.activity import ActivityTracker

            fastevents.install()
            fastlogs.install()
            fastdocket.install()
            fastroutes.install()
            fastmiddleware.install()

            gc.freeze()  # create_app(final=True) runs a full collection: the imported modules stay out of it (-40 %)
            self.tracker = ActivityTracker(create_app(final=True), self.identity)
            config = uvicorn.Config(self.tracker, log_level="warning", access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=10)
            self.server = uvicorn.Server(config)
        finally:
            gc.enable()
            gc.freeze()
        return wishes

    async def serve(self, wishes: dict[str, bool]) -> None:
        housekeeping = asyncio.create_task(self._housekeeping(wishes))
        housekeeping.add_done_callback(self._housekeeping_ended)
        try:
            await self.server.serve(sockets=[self.listener])
        finally:
            housekeeping.cancel()

    def _housekeeping_ended(self, task: asyncio.Task[None]) -> None:
        """A server without its housekeeping would never stop by itself: a failure there stops it."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("housekeeping failed: stopping", exc_info=task.exception())
        self.server.should_exit = True

    def _check_home(self) -> None:
        reason = self.home_watch.lost()
        if reason is not None:
            raise _HomeLost(reason)

    async def _wait_until_settled(self) -> None:
        """Until the API is quiet and no run is in progress: deferred work must never slow a run down (the run
        that started this server is usually still importing when the API first goes quiet)."""
        probe_every, next_probe, window = SETTLE_POLL[0], 0.0, None
        while True:
            now = time.monotonic()
            quiet = self.tracker.idle_for() >= SETTLE_SECONDS
            # a new quiet moment is probed at once; the same one again after a growing pause (a run holds the lease)
            if (quiet and self.tracker.last_active != window) or now >= next_probe:
                self._check_home()  # before probing runs.lock, which would make the removed folder again
                if quiet:
                    if self._no_run_in_progress():
                        return
                    window = self.tracker.last_active
                    probe_every = min(SETTLE_POLL[1], probe_every * 1.5)
                next_probe = now + probe_every
            await asyncio.sleep(SETTLE_POLL[0])

    def _no_run_in_progress(self) -> bool:
        probe = FileLock(self.paths.runs_lock)
        try:
            return probe.acquire(blocking=False)
        finally:
            probe.release()

    async def _housekeeping(self, wishes: dict[str, bool]) -> None:
        try:
            await self._keep_house(wishes)
        except _HomeLost as lost:
            logger.warning("%s: stopping", lost)
            self.home_lost = True
            remove_state(self.paths, self.token)
            self.server.should_exit = True

    async def _keep_house(self, wishes: dict[str, bool]) -> None:
        while not self.server.started:
            await asyncio.sleep(0.01)
        self.ready = time.time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        logger.info("Prefect API ready at http://127.0.0.1:%d/api (pid %d, %.1f s after start, %.1f s CPU)",
                    self.port, os.getpid(), self.ready - self.started, usage.ru_utime + usage.ru_stime)
        await self._wait_until_settled()
        if warm_runner_enabled():
            self.runner = WarmRunner(self.paths, self.client_env, sys.stderr)
            self.runner.start()
        try:
            await _register_block_types(wishes)
        except Exception:  # noqa: BLE001 - registration is a convenience for the UI's block catalogue
            logger.exception("block type registration failed")
        check_every = min(5.0, max(0.2, self.idle_timeout / 4)) if self.idle_timeout else 5.0
        while True:
            await asyncio.sleep(check_every)
            self._check_home()
            if self.runner is not None and self.runner.needs_restart():
                await self._wait_until_settled()
                self.runner.start()
            if self.idle_timeout and self._idle():
                logger.info("idle for %.0f s: stopping", self.tracker.idle_for())
                remove_state(self.paths, self.token)
                self.server.should_exit = True
                return

    def _idle(self) -> bool:
        """Idle past the timeout and no run holds ``runs.lock``; then keep that lock until this process exits."""
        if self.tracker.idle_for() < self.idle_timeout:
            return False
        return self._runs_lock.acquire(blocking=False)

    def shutdown(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        remove_state(self.paths, self.token)
        if self.home_lost and self.home_watch.remove_remade_home():  # nothing of ours runs any more: never remade
            logger.info("removed %s again: Prefect had made it anew", self.paths.home)
        self.home_watch.close()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aodncore-server", description=__doc__.splitlines()[0])
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the background server until it is stopped or idle; the process exit code."""
    client_env = dict(os.environ)  # what a run sees before Prefect is imported: the warm runner starts from it
    args = _parse(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"))
    logging.root.addHandler(handler)
    logging.root.setLevel(logging.WARNING)  # docket and uvicorn chatter stays out of server.log
    logger.setLevel(logging.INFO)
    try:
        supervisor = Supervisor(args, client_env)
    except FileNotFoundError as missing:
        logger.error("the server's home folder is gone before it started (%s): not starting", missing.filename)
        return 1
    try:
        wishes = supervisor.build_app()
        asyncio.run(supervisor.serve(wishes))
    except Exception:
        logger.exception("the background Prefect server failed")
        return 1
    finally:
        supervisor.shutdown()
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

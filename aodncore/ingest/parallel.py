"""Run the per-file ingest in worker processes, bringing each file's log records back to the caller.

Why processes: the netCDF-C/HDF5 libraries bundled with ``netCDF4`` are not thread-safe (concurrent opens crash
the interpreter), and compliance checking is CPU-bound Python, so threads would not run it in parallel anyway.
Each worker process handles one file at a time; the caller's thread re-emits the worker's log records through
the normal ``logging`` machinery, so they reach whatever handlers are attached there (e.g. the Prefect run
log), and records the outcome in the ingest ledger. A file's lines come back as *one* record (every line in it):
each record shipped to Prefect costs the flow process and the Prefect server about a millisecond, more than
the handler spends writing it (``benchmarks/bench_throughput.py``).

Workers are started with the ``forkserver`` method (safe with the caller's threads) and pre-import the pipeline,
so a new worker costs a fork, not a fresh interpreter. The fork server keeps the environment of the moment it was
started, so each pool hands its workers the caller's current ``os.environ`` (credentials, endpoints).

The worker processes outlive the run when the next run of the same process would start them the same way
(:mod:`aodncore.ingest.keptpools`), so what belongs to one run — its settings (run folder, config, handler) —
is pickled once per run; a worker unpickles it once per run.

Transport: a ``ProcessPoolExecutor`` starts, keeps and watches the worker processes, but the files do not travel
through it. Each message through the executor costs the caller's process ~0.7 ms of CPU (a feeder thread
pickling and writing it, the executor's manager thread waking on the submit and again on the result, the
future), more than a third of what a format-only file costs the whole flow process. So a pool sends each worker
*one* executor task per run, :func:`_serve_in_worker`, which connects back over a Unix socket in a folder only
this user may enter (one folder a connection, gone once it is made: :mod:`aodncore.ingest.sockdirs`) and then
ingests the objects sent to it on that connection, one at a time, answering each with its outcome and log
records: per file one write and one read in the calling thread, nothing else. A worker
that dies (segfault, OOM killer) closes its connection: the file it had is failed as a crashed executor task
would fail it (``worker failed: BrokenProcessPool``), the executor sees the death as before and stops the pool's
other workers, and every later file fails the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

from aodncore.ingest import keptpools, scratch, sockdirs
from aodncore.ingest.logbatch import LogBatch
from aodncore.ingest.outcome import FAILED, FileOutcome
from aodncore.ingest.runner import IngestSettings, ingest_object, record_outcome
from aodncore.ingest.sources import LandingObject
from aodncore.util import capped

__all__ = ["ProcessIngestPool", "adopt_inherited_fork_server", "available_cores", "combine_records",
           "start_fork_server"]

logger = logging.getLogger(__name__)

PRELOAD_MODULES = [
    "aodncore.ingest.runner",
    "aodncore.pipeline.handlerbase",
    "aodncore.pipeline.steps.check",
    "compliance_checker.runner",
]

WARM_CHECKS_ENV = "AODNCORE_FORKSERVER_WARM_CHECKS"
"""Set while the fork server starts: the compliance suites it warms up (see :mod:`aodncore.ingest.forkwarm`)."""

DIRECT_LINKS = True
"""Send the files to the workers over a connection of their own (see the module doc); False: one executor task
per file (the transport before; tests compare the two)."""

_CRASHED = "A process in the process pool was terminated abruptly while the future was running or pending."
"""What the executor says of a task whose worker process died (a file lost with its worker says the same)."""

_worker_run: tuple[str, IngestSettings] | None = None
_combine_logs = True
_context_lock = threading.Lock()
_context: Any = None


class _RecordCollector(logging.Handler):
    """Collects log records in a form that can be pickled back to the parent process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = self._formatter.formatException(record.exc_info)
                record.exc_info = None
            record.stack_info = None
            for key, value in list(record.__dict__.items()):
                if not isinstance(value, str | int | float | bool | type(None)):
                    record.__dict__[key] = str(value)
            self.records.append(record)
        except Exception:  # noqa: BLE001 - never break the ingest for a log line
            self.handleError(record)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's CPU set): the default number
    of worker processes."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        return max(1, counter() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def combine_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """One record for everything a worker logged about one landing object (at most one record is returned).

    Each record shipped to the Prefect API costs the flow process and the server far more than the line itself,
    so a file's lines travel as one record: the first record with the highest level carries them all, one per
    line, in order; a line names its level when that is not the record's own, and its logger when that is not
    the first record's. Tracebacks stay with their line.
    """
    if len(records) <= 1:
        return records
    first = records[0]
    top = max(records, key=lambda record: record.levelno)
    lines = []
    for index, record in enumerate(records):
        prefix = "" if record.levelno == top.levelno else f"{record.levelname}: "
        if record.name != first.name:
            prefix += f"[{record.name}] "
        text = ("  " if index else "") + prefix + str(record.msg)
        if record.exc_text:
            text += "\n" + record.exc_text
        lines.append(text)
    combined = logging.makeLogRecord(dict(first.__dict__))
    combined.levelno, combined.levelname = top.levelno, top.levelname
    combined.msg, combined.args = "\n".join(lines), None
    combined.exc_text = None
    combined.aodncore_lines = len(records)
    return [combined]


def _init_worker(level: int, environ: dict[str, str] | None = None, combine_logs: bool = True) -> None:
    global _combine_logs
    _combine_logs = combine_logs
    if environ is not None:
        # the forkserver was started with the environment of its first use; the caller's may have changed since
        # (credentials, AWS_ENDPOINT_URL, ...), and the worker must see what the caller sees now
        os.environ.clear()
        os.environ.update(environ)
    library_logger = logging.getLogger("aodncore")
    library_logger.setLevel(level)
    library_logger.propagate = False
    capped.reuse_child()  # aodncore's own process: its capped checks share a long-lived child (util.cappedchild)


def _run_settings(run: str, settings_blob: bytes) -> IngestSettings:
    """The settings of run ``run``, unpickled on the worker's first object of that run."""
    global _worker_run
    if _worker_run is None or _worker_run[0] != run:
        _worker_run = (run, pickle.loads(settings_blob))
    return _worker_run[1]


def _ingest_in_worker(obj: LandingObject, run: str,
                      settings_blob: bytes) -> tuple[dict[str, Any], list[logging.LogRecord]]:
    settings = _run_settings(run, settings_blob)
    collector = _RecordCollector()
    library_logger = logging.getLogger("aodncore")
    library_logger.addHandler(collector)
    try:
        outcome = ingest_object(obj, settings)
    finally:
        library_logger.removeHandler(collector)
    records = combine_records(collector.records) if _combine_logs else collector.records
    return outcome.to_dict(), records


def _serve_in_worker(address: str, run: str, settings_blob: bytes) -> int:
    """A worker's executor task for one pool's run: connect to ``address``, then ingest every object sent on the
    connection, answering each with ``(True, (outcome dict, records))`` — or ``(False, exception)``, as the
    executor would have raised it — until the caller closes it; returns how many objects it ingested."""
    sock = socket.socket(socket.AF_UNIX)  # a stream socket (the default type)
    sock.connect(address)
    conn = Connection(sock.detach())
    served = 0
    try:
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                return served
            try:
                reply: tuple[bool, Any] = (True, _ingest_in_worker(_decoded(pickle.loads(message)), run,
                                                                   settings_blob))
            except BaseException as error:  # noqa: BLE001 - the executor, too, hands any exception back
                reply = (False, error)
            try:
                data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:  # noqa: BLE001 - an answer that cannot be pickled: say why
                data = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
            try:
                conn.send_bytes(data)
            except OSError:
                return served
            served += 1
    finally:
        conn.close()


_OBJECT_FIELDS = tuple(field.name for field in dataclasses.fields(LandingObject))


def _encoded(obj: LandingObject) -> Any:
    """What is pickled to send ``obj``: its field values (a third of the cost of pickling the dataclass)."""
    return tuple(getattr(obj, name) for name in _OBJECT_FIELDS) if type(obj) is LandingObject else obj


def _decoded(sent: Any) -> LandingObject:
    return LandingObject(*sent) if isinstance(sent, tuple) else sent


class _Link:
    """The caller's end of one worker's connection (see :func:`_serve_in_worker`)."""

    def __init__(self, sock: socket.socket, served: Future) -> None:
        self.sock = sock
        self.conn = Connection(os.dup(sock.fileno()))
        self.served = served

    def ask(self, obj: LandingObject) -> tuple[bool, Any]:
        """Send ``obj``, wait for the worker's answer; ``BrokenProcessPool`` when the worker is gone."""
        try:
            self.conn.send_bytes(pickle.dumps(_encoded(obj), protocol=pickle.HIGHEST_PROTOCOL))
            return pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as error:
            raise BrokenProcessPool(_CRASHED) from error

    def close(self) -> None:
        """Hang up (the worker's task then ends); wakes a thread still waiting on it."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.sock.close()


def _mp_context(checks: tuple[str, ...] = ()) -> Any:
    """The forkserver context; the first call starts the fork server, pre-importing the pipeline and warming
    compliance-checker up for ``checks`` there (:mod:`aodncore.ingest.forkwarm`).

    The fork server listens on a socket file in a folder only this user may enter (not Linux's abstract socket
    namespace, which any local user may connect to: the fork server forks whatever it is sent)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([*PRELOAD_MODULES, "aodncore.ingest.forkwarm"])
            # the fork server is ``python -c ...``: without PYTHONSAFEPATH its first import path would be the
            # caller's working directory, and Python 3.11's fork server imports the pipeline before (never) taking
            # the caller's sys.path — so an ``aodncore`` folder there would be what every worker runs
            settings = {WARM_CHECKS_ENV: ",".join(checks), "PYTHONSAFEPATH": "1"}
            previous = {name: os.environ.get(name) for name in settings}
            os.environ.update(settings)
            try:
                sockdirs.use_for_multiprocessing()  # the fork server's socket: in a folder a sweep knows
                with _private_socket():
                    forkserver.ensure_running()  # now, with the variables set: it outlives this pool
            finally:
                for name, value in previous.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
            _context = context
        return _context


@contextmanager
def _private_socket() -> Iterator[None]:
    """Sockets made meanwhile by multiprocessing are files in its private folder, not abstract names."""
    from multiprocessing import util

    abstract, util.abstract_sockets_supported = util.abstract_sockets_supported, False
    try:
        yield
    finally:
        util.abstract_sockets_supported = abstract


def start_fork_server(checks: tuple[str, ...] = ()) -> int | None:
    """Start the worker pools' fork server now, warmed up for ``checks`` (a process that forks runs: the warm
    runner); its pid. Processes forked from here afterwards use it (:func:`adopt_inherited_fork_server`)."""
    _mp_context(tuple(checks))
    return forkserver._forkserver._forkserver_pid


def adopt_inherited_fork_server() -> None:
    """In a process forked after :func:`start_fork_server`: start workers from that fork server (a sibling, not a
    child: multiprocessing would look for its exit status and fail) while it runs, else from one of its own."""
    server = forkserver._forkserver
    original = type(server).ensure_running.__get__(server)

    def ensure_running() -> None:
        from multiprocessing import resource_tracker

        with server._lock:
            pid = server._forkserver_pid
            if pid is not None and sockdirs.process_alive(pid):
                resource_tracker.ensure_running()
                return
            if server._forkserver_alive_fd is not None:
                os.close(server._forkserver_alive_fd)
            server._forkserver_address = server._forkserver_alive_fd = server._forkserver_pid = None
        sockdirs.use_for_multiprocessing()
        with _private_socket():
            original()

    if server._forkserver_pid is not None:
        server.ensure_running = ensure_running  # type: ignore[method-assign]
        forkserver.ensure_running = ensure_running


def _checks(settings: IngestSettings) -> tuple[str, ...]:
    check_params = dict(settings.handler_kwargs or {}).get("check_params") or {}
    return tuple(str(name) for name in check_params.get("checks") or ())


class ProcessIngestPool:
    """A pool of worker processes ingesting landing objects with fixed settings.

    Use as a context manager. :meth:`ingest` blocks the calling thread until the object is done, re-emits the
    worker's log records in the calling thread (one record per object, see :func:`combine_records`, unless
    ``combine_logs`` is False), records the outcome in the ledger and reports progress.

    Worker processes are started on demand, at most ``workers``; those of an earlier run of this process are
    taken over when they were started the same way, and left for the next run at the end (``reused`` says
    which; :mod:`aodncore.ingest.keptpools`).
    """

    def __init__(self, settings: IngestSettings, workers: int, log_level: int = logging.INFO, *,
                 combine_logs: bool = True) -> None:
        self.settings = settings
        self._run = uuid.uuid4().hex
        self._settings_blob = pickle.dumps(settings.for_worker(), protocol=pickle.HIGHEST_PROTOCOL)
        self._broken = False
        shape = keptpools.PoolShape.now(workers, log_level, combine_logs)
        context = _mp_context(_checks(settings))
        self._kept: keptpools.KeptPool | None = keptpools.acquire(shape, lambda: ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(log_level, dict(shape.environ), combine_logs),
        ))
        self._executor = self._kept.executor
        self.reused = self._kept.runs > 1
        self._workers = workers
        self._direct = DIRECT_LINKS
        self._links_lock = threading.Condition()
        self._free: list[_Link] = []
        self._links: list[_Link] = []
        self._starting = 0
        if self._direct and not scratch.is_run_folder(settings.work_dir or ""):
            sockdirs.sweep_stale()  # killed runs' socket folders (a run's own start swept them: scratch.run_scratch)

    def __enter__(self) -> ProcessIngestPool:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self.shutdown(keep=exc_type is None)

    def shutdown(self, *, keep: bool = True) -> None:
        """End this run's use of the workers: kept for the next run (if ``keep`` and they are fine), or stopped."""
        self._hang_up()
        kept, self._kept = self._kept, None
        if kept is not None:
            keptpools.release(kept, reusable=keep and not self._broken)

    def _hang_up(self) -> None:
        """Close every worker connection and wait for the workers' tasks to end (they must, before the executor
        is kept or stopped)."""
        with self._links_lock:
            links, self._links, self._free = self._links, [], []
        for link in links:
            link.close()
        for link in links:
            try:
                link.served.result(timeout=60)
            except Exception:  # noqa: BLE001 - a worker that died: the executor is not reused
                self._broken = True

    def _take_link(self) -> _Link:
        """A free worker connection; a new one while fewer than ``workers`` exist; else wait for one."""
        with self._links_lock:
            while not self._free and len(self._links) + self._starting >= self._workers:
                self._links_lock.wait()
            if self._free:
                return self._free.pop()
            self._starting += 1
        try:
            link = self._connect()
        finally:
            with self._links_lock:
                self._starting -= 1
                self._links_lock.notify()
        with self._links_lock:
            self._links.append(link)
        return link

    def _give_back(self, link: _Link, *, alive: bool) -> None:
        with self._links_lock:
            if alive and link in self._links:
                self._free.append(link)
            elif link in self._links:
                self._links.remove(link)
            self._links_lock.notify()
        if not alive:
            link.close()

    def _connect(self) -> _Link:
        """Start one worker's task for this run and take its connection (fails as a submit to a broken pool
        would, and when the task ends before connecting). The socket's folder exists only until the worker has
        connected (:mod:`aodncore.ingest.sockdirs`)."""
        with sockdirs.socket_folder() as folder:
            address = os.path.join(folder, sockdirs.SOCKET_NAME)
            listener = socket.socket(socket.AF_UNIX)  # a stream socket (the default type)
            try:
                listener.bind(address)
                listener.listen(1)
                listener.settimeout(0.1)
                served = self._executor.submit(_serve_in_worker, address, self._run, self._settings_blob)
                while True:
                    try:
                        sock, _ = listener.accept()
                        break
                    except TimeoutError:
                        if served.done():
                            served.result()  # the executor's own error (BrokenProcessPool, ...)
                            raise BrokenProcessPool(_CRASHED) from None
            finally:
                listener.close()
        sock.setblocking(True)
        return _Link(sock, served)

    def _ask(self, obj: LandingObject) -> tuple[dict[str, Any], list[logging.LogRecord]]:
        if not self._direct:
            return self.submit(obj).result()
        link = self._take_link()
        answered = False
        try:
            ok, payload = link.ask(obj)
            answered = True
        finally:  # a connection without its answer read is never used again
            self._give_back(link, alive=answered)
            if not answered:  # its worker died: let the executor see it first, as when its task was the file's
                with contextlib.suppress(Exception):
                    link.served.exception(timeout=10)
        if not ok:
            raise payload
        return payload

    def submit(self, obj: LandingObject) -> Future:
        return self._executor.submit(_ingest_in_worker, obj, self._run, self._settings_blob)

    def ingest(self, obj: LandingObject, logs: LogBatch | None = None) -> FileOutcome:
        """Ingest one object in a worker process (the calling thread waits); its log records are emitted here, or
        queued in ``logs`` to travel with other objects' records."""
        try:
            outcome_dict, records = self._ask(obj)
        except Exception as error:  # noqa: BLE001 - a crashed worker must not lose the object
            if isinstance(error, BrokenProcessPool):
                self._broken = True
            logger.error("worker process failed on %s: %s: %s", obj.uri, type(error).__name__, error)
            outcome = FileOutcome(
                source=obj.uri, name=obj.name, status=FAILED, error=f"worker failed: {type(error).__name__}"
            )
        else:
            for record in records:
                if logs is not None:
                    logs.add(record)
                else:
                    logging.getLogger(record.name).handle(record)
            outcome = FileOutcome.from_dict(outcome_dict)
        record_outcome(self.settings, obj, outcome)
        return outcome

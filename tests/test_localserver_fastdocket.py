"""The background server's docket worker polls less often and still runs every task as Prefect's does.

* On a real docket worker (in-memory broker, as the server's): a task added for now starts at once even when the
  polling interval is far longer than the test allows (the read for new tasks wakes when one arrives), and a task
  scheduled a little ahead runs after its time; intervals the caller passes win.
* Version gating, the off switch, installing twice.
* A real background server, with and without it: deleting a flow run deletes its logs (Prefect hands that to a
  docket task), and the server log says which worker is in use.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.prefect


async def _run_tasks(worker_class, *, interval: timedelta | None = None) -> dict[str, float]:
    from docket import Docket

    from aodncore.prefect.localserver import fastdocket

    finished: dict[str, float] = {}

    async def note(tag: str) -> None:
        finished[tag] = time.monotonic()

    async def wait_for(tag: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while tag not in finished and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    original = fastdocket.CHECK_INTERVAL
    if interval is not None:
        fastdocket.CHECK_INTERVAL = interval
    try:
        async with Docket(name=f"aodncore-test-{time.monotonic_ns()}", url="memory://") as docket:
            docket.register(note)
            async with worker_class(docket) as worker:
                running = asyncio.create_task(worker.run_forever())
                try:
                    await asyncio.sleep(0.3)
                    added = time.monotonic()
                    await docket.add(note)("now")
                    await wait_for("now", 10)
                    finished["now-added"] = added
                    if interval is None:
                        due = datetime.now(UTC) + timedelta(seconds=0.3)
                        added = time.monotonic()
                        await docket.add(note, when=due)("later")
                        await wait_for("later", 15)
                        finished["later-added"] = added
                finally:
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)
    finally:
        fastdocket.CHECK_INTERVAL = original
    return finished


def test_a_task_added_for_now_starts_at_once_whatever_the_polling_interval():
    from docket import Worker

    from aodncore.prefect.localserver.fastdocket import quiet_worker_class

    finished = asyncio.run(_run_tasks(quiet_worker_class(Worker), interval=timedelta(seconds=60)))
    assert "now" in finished, "an immediate task waited for the (60 s) polling interval"
    assert finished["now"] - finished["now-added"] < 10


def test_a_scheduled_task_runs_after_its_time_with_and_without_the_quiet_worker():
    from docket import Worker

    from aodncore.prefect.localserver.fastdocket import quiet_worker_class

    for worker_class in (Worker, quiet_worker_class(Worker)):
        finished = asyncio.run(_run_tasks(worker_class))
        assert {"now", "later"} <= set(finished), worker_class
        assert finished["later"] - finished["later-added"] >= 0.3 - 0.02  # not before its time


def test_the_quiet_worker_uses_the_interval_unless_the_caller_gives_one():
    from docket import Docket, Worker

    from aodncore.prefect.localserver.fastdocket import CHECK_INTERVAL, quiet_worker_class

    async def build() -> tuple:
        async with Docket(name=f"aodncore-test-{time.monotonic_ns()}", url="memory://") as docket:
            quiet = quiet_worker_class(Worker)
            default = quiet(docket)
            given = quiet(docket, minimum_check_interval=timedelta(milliseconds=50))
            return (default.minimum_check_interval, default.scheduling_resolution,
                    given.minimum_check_interval, given.scheduling_resolution)

    assert asyncio.run(build()) == (CHECK_INTERVAL, CHECK_INTERVAL, timedelta(milliseconds=50), CHECK_INTERVAL)
    import inspect

    own = inspect.signature(Worker.__init__).parameters
    assert own["minimum_check_interval"].default < CHECK_INTERVAL  # docket's own defaults: what it replaces
    assert own["scheduling_resolution"].default < CHECK_INTERVAL


def test_install_only_for_a_verified_prefect_and_not_when_switched_off(monkeypatch, caplog):
    import prefect
    from prefect.server.api import background_workers

    from aodncore.prefect.localserver import fastdocket

    original = background_workers.Worker
    monkeypatch.setattr(background_workers, "Worker", original)  # restored after the test
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")

    monkeypatch.setenv(fastdocket.ENV_FAST_DOCKET, "0")
    assert fastdocket.install() is False and background_workers.Worker is original
    monkeypatch.delenv(fastdocket.ENV_FAST_DOCKET)

    monkeypatch.setattr(prefect, "__version__", "3.0.0")
    assert fastdocket.install() is False and background_workers.Worker is original
    assert "its background task worker polls at docket's defaults" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(background_workers, "Worker", original)

    from aodncore.prefect.localserver.fastevents import VERIFIED_PREFECT_VERSIONS

    if prefect.__version__ not in VERIFIED_PREFECT_VERSIONS:
        pytest.skip(f"Prefect {prefect.__version__} is not one the quiet worker was verified against")
    assert fastdocket.install() is True
    quiet = background_workers.Worker
    assert quiet is not original and issubclass(quiet, original)
    assert fastdocket.install() is True and background_workers.Worker is quiet  # not wrapped twice


def _flow_run_logs_deleted(tmp_path, fast: str) -> tuple[int, int, str]:
    from test_localserver import assert_nothing_left, clean_env, server_log

    from aodncore.prefect.localserver.control import BackgroundServer

    home = tmp_path / f"home-{fast}"
    env = clean_env(home, AODNCORE_WARM_RUNNER="0", AODNCORE_SERVER_FAST_DOCKET=fast)
    with pytest.MonkeyPatch.context() as patch:
        for key in [key for key in __import__("os").environ if key.startswith(("PREFECT_", "AODNCORE_"))]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        server = BackgroundServer(home).start()
        try:
            server.wait()
            url = server.api_url

            def call(method: str, path: str, body: object = None) -> object:
                data = None if body is None else json.dumps(body).encode()
                for attempt in range(10):  # as Prefect's client: a 503 (e.g. SQLite busy) is retried
                    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                                     headers={"Content-Type": "application/json"})
                    try:
                        with urllib.request.urlopen(request, timeout=60) as response:
                            payload = response.read()
                        return json.loads(payload) if payload else None
                    except urllib.error.HTTPError as error:
                        if error.code != 503 or attempt == 9:
                            raise
                        time.sleep(0.2)

            flow = call("POST", "/flows/", {"name": "aodncore-docket-test"})
            run = call("POST", "/flow_runs/", {"flow_id": flow["id"], "name": "docket-test"})
            call("POST", "/logs/", [{"name": "aodncore.test", "level": 20, "message": f"line {index}",
                                     "timestamp": datetime.now(UTC).isoformat(), "flow_run_id": run["id"]}
                                    for index in range(5)])
            query = {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 50}
            before = len(call("POST", "/logs/filter", query))
            call("DELETE", f"/flow_runs/{run['id']}")
            deadline = time.monotonic() + 30
            after = before
            while after and time.monotonic() < deadline:
                time.sleep(0.1)
                after = len(call("POST", "/logs/filter", query))
            log = server_log(home)
        finally:
            server.release()
            assert_nothing_left(home)
    return before, after, log


@pytest.mark.timeout(300)
def test_the_background_server_still_runs_docket_tasks(tmp_path):
    """Deleting a flow run deletes its logs through a docket task, with the quiet worker as with Prefect's."""
    for fast, line in (("1", "background task worker polls every 1 s"),
                       ("0", "AODNCORE_SERVER_FAST_DOCKET=0: Prefect's background task worker polls at docket's "
                             "defaults")):
        before, after, log = _flow_run_logs_deleted(tmp_path, fast)
        assert (before, after) == (5, 0), fast
        assert line in log
        if fast == "1":  # the routing shortcut (fastroutes) is on in the same server: every call above was routed
            assert "requests routed past routers whose paths cannot match" in log
            assert "default_content_type as plain ASGI middleware" in log  # fastmiddleware, likewise

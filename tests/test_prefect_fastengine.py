"""``aodncore.prefect.fastengine``: the ready-made flows' runs are created with their name (no rename request),
with the same name, states, result and logs as Prefect's own engine gives them; other flows are untouched; the
version gate and the off switch keep Prefect's engine."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR

from aodncore.prefect import fastengine

pytestmark = [pytest.mark.prefect]

GOOD = next(iter(GOOD_FILES))
NAME = re.compile(r"^ingest-landing (?P<where>.+) @ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@contextmanager
def _engine(fast: bool):
    """The flows' engine with the shortcut (``fast``) or Prefect's own; restored afterwards."""
    was = fastengine.installed()
    if fast:
        assert fastengine.install()
    else:
        fastengine.uninstall()
    try:
        yield
    finally:
        if was:
            fastengine.install()
        else:
            fastengine.uninstall()


@contextmanager
def _renames(monkeypatch):
    """The rename requests made meanwhile (Prefect's client method, called through: the server is real)."""
    from prefect.client.orchestration import SyncPrefectClient

    seen: list[str] = []
    original = SyncPrefectClient.set_flow_run_name

    def spy(self, flow_run_id, name):
        seen.append(name)
        return original(self, flow_run_id, name)

    monkeypatch.setattr(SyncPrefectClient, "set_flow_run_name", spy)
    yield seen


def _landing(root, tag: str):
    landing = root / f"landing-{tag}"
    landing.mkdir()
    shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
    shutil.copy(IMOS_DIR / BAD_NC, landing / BAD_NC)
    return landing


def _run(tmp_path, tag: str, fast: bool, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    from aodncore.prefect.flows import ingest_landing

    landing = _landing(tmp_path, tag)
    with _engine(fast), _renames(monkeypatch) as renames:
        state = ingest_landing(str(landing), base_dir=str(tmp_path / f"base-{tag}"), settle_seconds=0, workers=1,
                               return_state=True)
    APILogWorker.drain_all(timeout=30)  # the run's logs are all on the server
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        logs = client.read_logs(log_filter=_logs_of(flow_run.id))
    return landing, state, flow_run, renames, logs


def _logs_of(flow_run_id):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    return LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))


def _messages(logs, landing) -> list[str]:
    """The run's log lines, its own paths and times taken out."""
    lines = []
    for log in logs:
        text = log.message.replace(str(landing), "<landing>")
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
        text = re.sub(r"\bin \d+(\.\d+)?s\b", "in <n>s", text)
        text = re.sub(r"/base-(fast|plain)/", "/base/", text)
        text = re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{8}", "<folder>", text)
        lines.append(text)
    return sorted(line for line in lines if "View at" not in line)


def test_runs_are_created_named_and_end_as_with_prefects_engine(prefect_harness, tmp_path, monkeypatch):
    plain_landing, plain, plain_run, plain_renames, plain_logs = _run(tmp_path, "plain", False, monkeypatch)
    fast_landing, fast, fast_run, fast_renames, fast_logs = _run(tmp_path, "fast", True, monkeypatch)

    assert plain_renames == [plain_run.name]  # Prefect's engine: created unnamed, then renamed
    assert fast_renames == []  # created with its name
    for landing, flow_run in ((plain_landing, plain_run), (fast_landing, fast_run)):
        match = NAME.match(flow_run.name)
        assert match and match["where"] == str(landing), flow_run.name
    assert (fast.type, fast.name, fast.message) == (plain.type, plain.name, plain.message)
    assert fast_run.state.name == plain_run.state.name == "Quarantined"
    plain_result, fast_result = plain.result(), fast.result()
    assert fast_result["counts"] == plain_result["counts"] == {"published": 1, "quarantined": 1}
    assert [(o["name"], o["status"]) for o in fast_result["outcomes"]] == [
        (o["name"], o["status"]) for o in plain_result["outcomes"]]
    assert fast_run.parameters == {**plain_run.parameters, "source": str(fast_landing),
                                   "base_dir": str(tmp_path / "base-fast")}
    assert _messages(fast_logs, fast_landing) == _messages(plain_logs, plain_landing)
    assert any(f"Beginning flow run '{fast_run.name}'" in log.message for log in fast_logs)


def test_other_flows_and_subflows_are_named_by_prefects_engine(prefect_harness, monkeypatch):
    from prefect import flow

    @flow(flow_run_name="inner-{x}")
    def inner(x: int) -> str:
        from prefect.runtime import flow_run

        return flow_run.name

    @flow(flow_run_name=lambda: "outer-by-callable")
    def outer() -> tuple[str, str]:
        from prefect.runtime import flow_run

        return flow_run.name, inner(3)

    with _engine(True), _renames(monkeypatch) as renames:
        assert outer() == ("outer-by-callable", "inner-3")
    assert renames == ["outer-by-callable", "inner-3"]


def test_the_version_gate_and_the_off_switch_keep_prefects_engine(monkeypatch):
    import prefect

    with _engine(False):
        monkeypatch.setenv(fastengine.ENV_FAST_FLOW_ENGINE, "0")
        assert not fastengine.install() and not fastengine.installed()
        monkeypatch.delenv(fastengine.ENV_FAST_FLOW_ENGINE)
        monkeypatch.setattr(prefect, "__version__", "3.0.0")
        assert not fastengine.install() and not fastengine.installed()
        monkeypatch.setattr(prefect, "__version__", sorted(fastengine.VERIFIED_PREFECT_VERSIONS)[0])
        assert fastengine.install() and fastengine.installed()
        assert fastengine.install()  # idempotent

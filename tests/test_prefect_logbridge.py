"""The log bridge: aodncore records reach the Prefect run's logs (real Prefect API via prefect_harness)."""

import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.prefect


def _read_logs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return logs


def _run_demo_flow(tag):
    from prefect import flow, task

    from aodncore.prefect.logbridge import context_thread_pool, forward_library_logs, submit_with_context

    lib = logging.getLogger("aodncore.demo")

    def library_work(where):
        lib.info("%s %s", tag, where)

    @task
    def step():
        library_work("from-task")

    @flow
    def demo():
        with forward_library_logs():
            library_work("from-flow")
            step()
            with context_thread_pool(2) as pool:
                list(pool.map(library_work, ["from-pool-map"]))
            with ThreadPoolExecutor(1) as plain:
                submit_with_context(plain, library_work, "from-submit").result()
                plain.submit(library_work, "from-plain-thread").result()  # no context: not forwarded
            thread = threading.Thread(target=library_work, args=("from-raw-thread",))
            thread.start()
            thread.join()
        lib.info("%s after-block", tag)  # the bridge is gone: default WARNING level drops it anyway

    state = demo(return_state=True)
    assert state.is_completed(), state
    return state.state_details.flow_run_id


def _messages(logs, tag):
    return sorted(log.message.split(" ", 1)[1] for log in logs if log.name == "aodncore.demo"
                  and log.message.startswith(tag + " "))


def test_library_logs_reach_the_run_from_flow_task_and_context_threads(prefect_harness):
    root = logging.getLogger("aodncore")
    level_before, handlers_before = root.level, list(root.handlers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # out-of-run records must be dropped silently, not warned about
        flow_run_id = _run_demo_flow("bridge1")
    logs = _read_logs(flow_run_id)
    assert _messages(logs, "bridge1") == ["from-flow", "from-pool-map", "from-submit", "from-task"]
    task_logs = [log for log in logs if log.message == "bridge1 from-task"]
    assert task_logs[0].task_run_id is not None
    # state restored on exit
    assert root.level == level_before and root.handlers == handlers_before


def test_no_duplicates_when_prefect_extra_loggers_already_forward(prefect_harness):
    from prefect.logging.handlers import APILogHandler

    root = logging.getLogger("aodncore")
    existing = APILogHandler()  # what PREFECT_LOGGING_EXTRA_LOGGERS=aodncore attaches
    root.addHandler(existing)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Prefect's own handler warns about the context-less threads
            flow_run_id = _run_demo_flow("bridge2")
        assert [h for h in root.handlers if isinstance(h, APILogHandler)] == [existing]
    finally:
        root.removeHandler(existing)
    messages = _messages(_read_logs(flow_run_id), "bridge2")
    assert messages == ["from-flow", "from-pool-map", "from-submit", "from-task"]


def test_nested_use_is_reference_counted():
    from aodncore.prefect.logbridge import LibraryAPILogHandler, forward_library_logs

    root = logging.getLogger("aodncore")
    with forward_library_logs():
        with forward_library_logs():
            pass
        assert any(isinstance(h, LibraryAPILogHandler) for h in root.handlers)
        assert root.getEffectiveLevel() == logging.INFO
    assert not any(isinstance(h, LibraryAPILogHandler) for h in root.handlers)

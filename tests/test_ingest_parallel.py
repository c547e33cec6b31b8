"""``aodncore.ingest.parallel``: the default worker count, and one combined log record per landing object that
carries every line, level, logger and traceback the worker logged (compared with the records uncombined)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ingest_helpers import BAD_NC, GOOD_FILES, HANDLER_PREFIX, IMOS_DIR

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, list_landing
from aodncore.ingest.configure import build_settings
from aodncore.ingest.parallel import ProcessIngestPool, _RecordCollector, available_cores, combine_records


def test_available_cores_is_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0))


def _collected(emit) -> list[logging.LogRecord]:
    """Records as a worker's collector prepares them for the trip to the parent."""
    logger = logging.getLogger("aodncore.test.combine")
    collector = _RecordCollector()
    logger.addHandler(collector)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        emit(logger)
    finally:
        logger.removeHandler(collector)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    return collector.records


def test_one_record_keeps_every_line_level_logger_and_traceback():
    def emit(logger):
        logger.info("running handler on %s", "a.nc")
        logger.warning("odd attribute %r", "x%y")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("check crashed")
        logger.getChild("child").info("from a child logger")
        logger.info("multi\nline message")

    records = _collected(emit)
    assert len(records) == 5
    (combined,) = combine_records(records)
    assert combined.levelno == logging.ERROR and combined.levelname == "ERROR"
    assert combined.name == "aodncore.test.combine"
    assert combined.aodncore_lines == 5
    assert combined.exc_info is None and combined.exc_text is None and combined.args is None
    text = combined.getMessage()
    lines = text.splitlines()
    assert lines[0] == "INFO: running handler on a.nc"
    assert "  WARNING: odd attribute 'x%y'" in lines
    assert "  check crashed" in lines  # the record's own level (ERROR) is not repeated
    assert "  INFO: [aodncore.test.combine.child] from a child logger" in lines
    assert "Traceback (most recent call last):" in text and "ValueError: boom" in text
    # the traceback follows its own line, before the next line
    assert text.index("check crashed") < text.index("ValueError: boom") < text.index("from a child logger")
    assert text.endswith("  INFO: multi\nline message")
    # every original message is in there, in order
    positions = [text.index(record.getMessage()) for record in records]
    assert positions == sorted(positions)
    # formatting the combined record cannot fail on the '%' of a message
    assert "x%y" in logging.Formatter("%(levelname)s %(message)s").format(combined)


def test_zero_or_one_record_is_left_as_it_is():
    assert combine_records([]) == []
    records = _collected(lambda logger: logger.warning("only %s", "one"))
    assert combine_records(records) == records
    assert records[0].getMessage() == "only one"


def _land(landing, *names):
    landing.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(IMOS_DIR / name, landing / name)


def _ingest_with_pool(tmp_path, caplog, tag, combine_logs, handler=None):
    landing = tmp_path / f"landing-{tag}"
    good = next(iter(GOOD_FILES))
    _land(landing, good, BAD_NC)
    options = {"handler": handler} if handler else {}
    settings = build_settings(base_dir=str(tmp_path / f"base-{tag}"), **options)
    caplog.clear()
    with ProcessIngestPool(settings, workers=1, combine_logs=combine_logs) as pool:
        outcomes = {obj.name: pool.ingest(obj) for obj in sorted(list_landing(str(landing)), key=lambda o: o.name)}
    records = [r for r in caplog.records if r.process != os.getpid() and r.name.startswith("aodncore")]
    return outcomes, records


def test_pool_ships_one_record_per_object_with_the_same_content(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="aodncore")
    combined_outcomes, combined = _ingest_with_pool(tmp_path, caplog, "combined", True)
    plain_outcomes, plain = _ingest_with_pool(tmp_path, caplog, "plain", False)

    assert {n: o.status for n, o in combined_outcomes.items()} == {n: o.status for n, o in plain_outcomes.items()}
    assert set(o.status for o in combined_outcomes.values()) == {PUBLISHED, QUARANTINED}
    assert len(combined) == 2 < len(plain)  # one record per object instead of several
    for record in combined:
        name = record.landing_object.rsplit("/", 1)[-1]
        own = [r for r in plain if getattr(r, "landing_object", "").endswith("/" + name)]
        assert len(own) >= 2, name
        assert record.levelno == max(r.levelno for r in own)
        text = record.getMessage()
        for line in own:  # every line of the uncombined run, with its level when it differs
            message = _without_ids(line.getMessage().replace("-plain", "-combined"))
            if line.levelno != record.levelno:
                message = f"{line.levelname}: {message}"
            assert message in _without_ids(text), (message, text)


def test_pool_failure_traceback_is_kept(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    outcomes, records = _ingest_with_pool(tmp_path, caplog, "boom", True,
                                          handler=f"{HANDLER_PREFIX}:ExplodingHandler")
    assert {o.status for o in outcomes.values()} == {FAILED, QUARANTINED}  # the bad file fails its check first
    (failed_name,) = [name for name, o in outcomes.items() if o.status == FAILED]
    (record,) = [r for r in records if r.landing_object.endswith("/" + failed_name)]
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert "RuntimeError: simulated system failure in process()" in text
    assert 'raise RuntimeError("simulated system failure in process()")' in text  # the traceback came along
    assert text.startswith("INFO: running ExplodingHandler on ")


def _without_ids(text: str) -> str:
    """Ingest ids and temporary names differ between two runs."""
    import re

    return re.sub(r"\d{8}T\d{6}Z|[0-9a-f]{8,}|o-[\w]+|tmp\w+", "<id>", text)  # + quarantine folders' UTC second


def test_flow_default_workers_follow_the_available_cores(tmp_path, prefect_harness):
    from aodncore.prefect.flows import ingest_landing

    landing = tmp_path / "landing"
    names = list(GOOD_FILES)[:2]
    _land(landing, *names)
    seen = _RecordCollector()
    run_logger = logging.getLogger("prefect.flow_runs")  # Prefect's run loggers do not propagate to the root
    run_logger.addHandler(seen)
    try:
        outcomes = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), settle_seconds=0)["outcomes"]
    finally:
        run_logger.removeHandler(seen)
    assert [o["status"] for o in outcomes] == [PUBLISHED, PUBLISHED]
    planned = [r.getMessage() for r in seen.records if "to process with" in r.getMessage()]
    assert planned and f"2 to process with {available_cores()} worker(s)" in planned[0]


def test_flow_run_logs_keep_every_file_line_in_few_records(tmp_path, prefect_harness):
    """Through the flow (two worker processes): each file's handler lines reach the run's logs; files that went
    well share records, the refused file has an ERROR record of its own."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from aodncore.prefect.flows import ingest_landing

    landing = tmp_path / "landing"
    _land(landing, BAD_NC)
    good = []
    for copy in range(2):  # ten files in four batches (two per worker)
        for name in GOOD_FILES:
            good.append(name.replace(".nc", f"-copy{copy}.nc"))
            shutil.copy(IMOS_DIR / name, landing / good[-1])
    state = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), workers=2, settle_seconds=0,
                           return_state=True)
    statuses = sorted(o["status"] for o in state.result(raise_on_failure=False)["outcomes"])
    assert statuses == [PUBLISHED] * len(good) + [QUARANTINED]
    APILogWorker.drain_all(timeout=30)
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        for _ in range(50):
            handler_logs = [log for log in client.read_logs(log_filter=log_filter)
                            if log.name == "aodncore.ingest.handler"]
            if all(any(name in log.message for log in handler_logs) for name in [*good, BAD_NC]):
                break
            time.sleep(0.2)
    text = "\n".join(log.message for log in handler_logs)
    for name in [*good, BAD_NC]:
        assert f"handler result for input_file '{(landing / name).as_uri()}'" in text, name
    (refused,) = [log for log in handler_logs if BAD_NC in log.message]
    assert refused.level == logging.ERROR
    assert not any(name in refused.message for name in good)
    assert "failed the FORMAT_CHECK" in refused.message
    assert all(log.task_run_id is not None for log in handler_logs)  # each in its batch's task run
    assert len(handler_logs) <= 4 + 1  # at most one per batch, plus the refused file's
    # the refused file's status line (the batch's "<name>: quarantined (<reason>)", INFO) is the last line of its
    # own record, not a record of its own: one record for the file
    (outcome,) = [o for o in state.result(raise_on_failure=False)["outcomes"] if o["status"] == QUARANTINED]
    status_line = f"{outcome['name']}: quarantined ({outcome['error']})"
    assert refused.message.endswith(f"\n  INFO: {status_line}")
    run_logs = client_logs(log_filter)
    assert [log.message for log in run_logs if log.message.endswith(status_line)] == [refused.message]


def client_logs(log_filter):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=log_filter)


def test_workers_forked_from_the_fork_server_start_with_the_checker_warm(tmp_path):
    """The fork server warms compliance-checker up for the first pool's suites; its workers check without
    warming up again (and with the same outcomes as an unwarmed check)."""
    import subprocess
    import sys

    script = f"""
import os, shutil, sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from ingest_helpers import GOOD_FILES, IMOS_DIR, warmed_checks
from aodncore.ingest import list_landing
from aodncore.ingest.configure import build_settings
from aodncore.ingest.parallel import ProcessIngestPool
landing = {str(tmp_path / "landing")!r}
os.makedirs(landing)
name = next(iter(GOOD_FILES))
shutil.copy(IMOS_DIR / name, os.path.join(landing, name))
settings = build_settings(base_dir={str(tmp_path / "base")!r}, checks=["cf:1.6"], delete_landing=False)
(obj,) = list(list_landing(landing))
with ProcessIngestPool(settings, workers=1) as pool:
    print("WARMED", pool._executor.submit(warmed_checks).result())
    print("STATUS", pool.ingest(obj).status)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARMED [('cf:1.6',)]" in result.stdout, result.stdout
    assert "STATUS published" in result.stdout


def test_the_fork_server_does_not_import_from_the_working_directory(tmp_path):
    """Python 3.11's fork server imports the pipeline from its own path, which for ``python -c`` starts with the
    working directory: a look-alike package there must not become what the workers run."""
    import subprocess
    import sys

    decoy = tmp_path / "cwd" / "compliance_checker"
    decoy.mkdir(parents=True)
    marks = tmp_path / "marks"
    marks.mkdir()
    (decoy / "__init__.py").write_text(
        f"import os\nopen(os.path.join({str(marks)!r}, str(os.getpid())), 'w').close()\n")
    (decoy / "runner.py").write_text("")
    script = f"""
import os
from multiprocessing import forkserver
from aodncore.ingest.configure import build_settings
from aodncore.ingest.parallel import ProcessIngestPool
with ProcessIngestPool(build_settings(base_dir={str(tmp_path / "base")!r}), workers=1) as pool:
    worker = pool._executor.submit(os.getpid).result()
    checker = pool._executor.submit(eval, "__import__('compliance_checker').__file__").result()
print("FORKSERVER", forkserver._forkserver._forkserver_pid, "WORKER", worker, "CHECKER", checker)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "cwd", capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    words = result.stdout.split()
    fork_server, worker, checker = words[words.index("FORKSERVER") + 1], words[words.index("WORKER") + 1], \
        words[words.index("CHECKER") + 1]
    assert not (marks / fork_server).exists() and not (marks / worker).exists()
    assert str(tmp_path) not in checker  # the installed compliance-checker

"""``LogBatch``: the records of objects that went well travel together, every line kept, problems on their own."""

from __future__ import annotations

import logging
import time

import pytest

from aodncore.ingest.logbatch import LogBatch, append_line


class _Seen(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def seen():
    logger = logging.getLogger("aodncore.test.logbatch")
    handler = _Seen()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def _record(level, message, name="aodncore.test.logbatch", **extra):
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_records_of_objects_that_went_well_become_one_with_every_line_in_order(seen):
    with LogBatch(max_records=10, max_seconds=60) as batch:
        for index in range(3):
            batch.add(_record(logging.INFO, f"running on f{index}.nc\n  handler result for f{index}.nc: SUCCESS",
                              landing_object=f"f{index}.nc", aodncore_lines=2))
        batch.add(_record(logging.INFO, "from another logger %", name="aodncore.test.logbatch.child"))
        assert seen.records == []  # queued
    (joined,) = seen.records
    assert joined.levelno == logging.INFO
    text = joined.getMessage()
    assert text.splitlines() == [
        "running on f0.nc", "  handler result for f0.nc: SUCCESS",
        "running on f1.nc", "  handler result for f1.nc: SUCCESS",
        "running on f2.nc", "  handler result for f2.nc: SUCCESS",
        "[aodncore.test.logbatch.child] from another logger %",
    ]
    assert joined.aodncore_objects == 4 and joined.aodncore_lines == 7
    assert not hasattr(joined, "landing_object")


def test_a_warning_is_emitted_alone_and_in_order(seen):
    batch = LogBatch(max_records=10, max_seconds=60)
    batch.add(_record(logging.INFO, "a ok"))
    batch.add(_record(logging.INFO, "b ok"))
    batch.add(_record(logging.ERROR, "c refused\nTraceback ...", landing_object="c.nc"))
    batch.add(_record(logging.INFO, "d ok"))
    assert [r.getMessage() for r in seen.records] == ["a ok\nb ok", "c refused\nTraceback ..."]
    assert seen.records[1].levelno == logging.ERROR and seen.records[1].landing_object == "c.nc"
    batch.flush()
    assert [r.getMessage() for r in seen.records][2:] == ["d ok"]  # a lone record is emitted as it is
    batch.flush()
    assert len(seen.records) == 3


def test_size_and_age_bounds_flush(seen):
    batch = LogBatch(max_records=3, max_seconds=60)
    for index in range(7):
        batch.add(_record(logging.INFO, f"line {index}"))
    assert [r.aodncore_objects for r in seen.records] == [3, 3]
    batch.flush()
    aged = LogBatch(max_records=100, max_seconds=0.05)
    aged.add(_record(logging.INFO, "early"))
    time.sleep(0.06)
    aged.add(_record(logging.INFO, "late"))
    assert seen.records[-1].getMessage() == "early\nlate"


def test_levels_the_logger_does_not_want_are_dropped(seen):
    with LogBatch() as batch:
        batch.add(_record(logging.DEBUG, "too detailed"))
        batch.add(_record(logging.INFO, "kept"))
    assert [r.getMessage() for r in seen.records] == ["kept"]


def test_a_status_line_joins_the_one_record_of_its_object_at_its_level():
    refused = _record(logging.ERROR, "running on c.nc\n  c.nc failed the FORMAT_CHECK", aodncore_lines=2)
    assert append_line([refused], logging.INFO, "c.nc: quarantined (reason)")
    assert refused.getMessage() == "running on c.nc\n  c.nc failed the FORMAT_CHECK\n  INFO: c.nc: quarantined (reason)"
    assert refused.levelno == logging.ERROR and refused.aodncore_lines == 3
    failed = _record(logging.WARNING, "x %s")
    assert append_line([failed], logging.WARNING, "x.nc: failed (boom)")
    assert failed.getMessage() == "x %s\n  x.nc: failed (boom)"  # same level: no prefix


def test_a_status_line_stays_a_record_of_its_own_when_it_cannot_join():
    info = _record(logging.INFO, "quiet")
    assert not append_line([info], logging.WARNING, "x.nc: failed (boom)")  # never in a lower-level record
    assert not append_line([], logging.INFO, "x.nc: quarantined")  # nothing came back (a crashed worker)
    two = [_record(logging.ERROR, "a"), _record(logging.ERROR, "b")]
    assert not append_line(two, logging.INFO, "x.nc: quarantined")  # uncombined records
    traced = _record(logging.ERROR, "a", exc_text="Traceback ...")
    assert not append_line([traced], logging.INFO, "x.nc: quarantined")  # the traceback comes after the message
    assert [r.getMessage() for r in (info, *two, traced)] == ["quiet", "a", "b", "a"]

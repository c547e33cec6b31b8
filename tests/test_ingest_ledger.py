"""IngestLedger: idempotency rule, history, concurrent writers (threads and processes)."""

import multiprocessing
import sqlite3
import threading

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, SKIPPED, FileOutcome, IngestLedger, LandingObject


def _obj(uri="s3://landing/IMOS/a.nc", fingerprint="etag1"):
    return LandingObject(uri=uri, name=uri.rsplit("/", 1)[-1], size=1, fingerprint=fingerprint,
                         bucket="landing", key=uri.split("/", 3)[-1])


def _outcome(obj, status, **kw):
    return FileOutcome(source=obj.uri, name=obj.name, status=status, **kw)


def test_published_is_done_only_for_same_fingerprint(tmp_path):
    ledger = IngestLedger(tmp_path / "ledger.db")
    obj = _obj()
    assert ledger.get(obj.uri, obj.fingerprint) is None
    assert not ledger.already_done(obj)
    ledger.record(obj, _outcome(obj, PUBLISHED, destination="IMOS/x/a.nc"), run_id="run-1")
    assert ledger.already_done(obj)
    entry = ledger.get(obj.uri, obj.fingerprint)
    assert (entry.status, entry.destination, entry.run_id) == (PUBLISHED, "IMOS/x/a.nc", "run-1")
    assert not ledger.already_done(_obj(fingerprint="etag2"))  # a changed file is processed again
    assert not ledger.already_done(_obj(uri="s3://landing/IMOS/b.nc"))


def test_quarantined_retried_only_when_fingerprint_changes(tmp_path):
    ledger = IngestLedger(tmp_path / "ledger.db")
    bad = _obj(fingerprint="bad")
    ledger.record(bad, _outcome(bad, QUARANTINED, check_result="failed", error="3 IMOS errors",
                                error_uri="s3://errors/a.nc"))
    assert ledger.already_done(bad)
    fixed = _obj(fingerprint="fixed")
    assert not ledger.already_done(fixed)
    entry = ledger.get(bad.uri, "bad")
    assert entry.error == "3 IMOS errors" and entry.error_uri == "s3://errors/a.nc"


def test_failed_and_skipped_do_not_block_and_latest_record_wins(tmp_path):
    ledger = IngestLedger(tmp_path / "ledger.db")
    obj = _obj()
    ledger.record(obj, _outcome(obj, FAILED, error="S3 timeout"))
    assert not ledger.already_done(obj)
    ledger.record(obj, _outcome(obj, SKIPPED))
    assert not ledger.already_done(obj)
    ledger.record(obj, _outcome(obj, PUBLISHED))
    assert ledger.already_done(obj)
    ledger.record(obj, _outcome(obj, FAILED, error="later failure"))
    assert not ledger.already_done(obj)
    assert [e.status for e in ledger.history(obj.uri)] == [FAILED, SKIPPED, PUBLISHED, FAILED]
    assert ledger.get_outcome(obj.uri, obj.fingerprint).error == "later failure"


def test_history_covers_every_fingerprint_and_survives_reopen(tmp_path):
    path = tmp_path / "sub" / "ledger.db"
    with IngestLedger(path) as ledger:
        ledger.record(_obj(fingerprint="v1"), _outcome(_obj(), PUBLISHED))
        ledger.record(_obj(fingerprint="v2"), _outcome(_obj(), QUARANTINED))
    with IngestLedger(path) as again:
        assert [(e.fingerprint, e.status) for e in again.history(_obj().uri)] == [("v1", PUBLISHED),
                                                                                 ("v2", QUARANTINED)]
        assert again.counts() == {PUBLISHED: 1, QUARANTINED: 1}
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_concurrent_writers_from_threads(tmp_path):
    ledger = IngestLedger(tmp_path / "ledger.db")
    errors = []

    def worker(n):
        try:
            for i in range(50):
                obj = _obj(uri=f"s3://landing/t{n}/f{i}.nc")
                ledger.record(obj, _outcome(obj, PUBLISHED), run_id=f"thread-{n}")
                assert ledger.already_done(obj)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ledger.counts() == {PUBLISHED: 400}
    ledger.close()


def _process_writer(path, n):
    ledger = IngestLedger(path)
    for i in range(40):
        obj = _obj(uri=f"s3://landing/p{n}/f{i}.nc")
        ledger.record(obj, _outcome(obj, PUBLISHED))
    ledger.close()


def test_concurrent_writers_from_processes(tmp_path):
    path = tmp_path / "ledger.db"
    IngestLedger(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(path), n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with IngestLedger(path) as ledger:
        assert ledger.counts() == {PUBLISHED: 120}


def test_ledger_pickles_by_path(tmp_path):
    import pickle

    ledger = IngestLedger(tmp_path / "ledger.db")
    obj = _obj()
    ledger.record(obj, _outcome(obj, PUBLISHED))
    copy = pickle.loads(pickle.dumps(ledger))
    assert copy.path == ledger.path and copy.already_done(obj)

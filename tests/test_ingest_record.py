"""The ingest record's claims and batched operations, on every backend (SQLite file, real PostgreSQL server)."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, SKIPPED, FileOutcome, LandingObject
from aodncore.ingest.record import RecordWriter, SqliteIngestRecord, new_owner_id, open_ingest_record


def _obj(n: int | str = 0, fingerprint: str = "etag1") -> LandingObject:
    uri = f"s3://landing/IMOS/f{n}.nc"
    return LandingObject(uri=uri, name=f"f{n}.nc", size=1, fingerprint=fingerprint, bucket="landing",
                         key=f"IMOS/f{n}.nc")


def _outcome(obj: LandingObject, status: str, **kw) -> FileOutcome:
    return FileOutcome(source=obj.uri, name=obj.name, status=status, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def record_url(request, tmp_path):
    """The location of a fresh, empty ingest record on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "record.sqlite")
    return request.getfixturevalue("postgres_db").url  # a fresh database on the session's real server


@pytest.fixture
def record(record_url):
    with open_ingest_record(record_url) as opened:
        yield opened


def test_open_picks_the_backend_by_url(tmp_path):
    assert isinstance(open_ingest_record(tmp_path / "a.sqlite"), SqliteIngestRecord)
    assert open_ingest_record(f"sqlite:///{tmp_path}/b.sqlite").path == tmp_path / "b.sqlite"
    with pytest.raises(ValueError, match="unsupported ingest record URL scheme"):
        open_ingest_record("mysql://host/db")


def test_claims_are_exclusive_and_released_by_recording(record):
    objects = [_obj(n) for n in range(5)]
    first = record.claim_many(objects[:3], "run-a")
    second = record.claim_many(objects, "run-b")

    assert first.claimed == objects[:3] and not first.elsewhere and not first.done
    assert second.claimed == objects[3:] and second.elsewhere == objects[:3]
    assert {(c.source_uri, c.owner) for c in record.claims()} == (
        {(o.uri, "run-a") for o in objects[:3]} | {(o.uri, "run-b") for o in objects[3:]})

    record.record_many([(o, _outcome(o, PUBLISHED)) for o in objects[:3]], owner="run-a")
    assert {c.owner for c in record.claims()} == {"run-b"}
    # what run-a published is now done for anybody; a claimer that listed it earlier learns so when claiming
    third = record.claim_many(objects, "run-c")
    assert third.done == objects[:3] and third.elsewhere == objects[3:] and not third.claimed
    assert {c.owner for c in record.claims()} == {"run-b"}  # done objects are not left claimed


def test_expired_claims_are_taken_over_and_own_claims_renewed(record):
    obj = _obj()
    assert record.claim_many([obj], "crashed", lease_seconds=0.05).claimed == [obj]
    assert record.claim_many([obj], "again").elsewhere == [obj]
    time.sleep(0.1)
    assert record.claim_many([obj], "survivor").claimed == [obj]  # the crashed claimer's lease expired
    assert [c.owner for c in record.claims()] == ["survivor"]
    assert record.claim_many([obj], "survivor", lease_seconds=60).claimed == [obj]  # re-claim is a renewal
    before = record.claims()[0].expires_at
    assert record.renew("survivor", lease_seconds=120) == 1
    assert record.claims()[0].expires_at > before
    record.release("survivor")
    assert record.claims() == []


def test_changed_content_is_claimed_and_quarantined_content_is_done(record):
    bad = _obj(fingerprint="bad")
    record.record(bad, _outcome(bad, QUARANTINED, error="3 IMOS errors"))
    assert record.claim_many([bad], "x").done == [bad]
    fixed = _obj(fingerprint="fixed")
    assert record.claim_many([fixed], "x").claimed == [fixed]
    assert record.claim_many([bad], "y", skip_done=False).elsewhere == [bad]  # x holds the URI


def test_failed_and_skipped_never_block_and_latest_wins(record):
    obj = _obj()
    for status in (FAILED, SKIPPED, PUBLISHED, FAILED):
        record.record(obj, _outcome(obj, status, error=status))
    assert not record.already_done(obj)
    assert [e.status for e in record.history(obj.uri)] == [FAILED, SKIPPED, PUBLISHED, FAILED]
    assert record.get_outcome(obj.uri, obj.fingerprint).error == FAILED
    assert record.latest(obj.uri).status == FAILED
    assert record.latest("s3://landing/never") is None


def test_batched_lookups_cover_more_than_one_chunk(record):
    objects = [_obj(n) for n in range(1234)]
    record.record_many([(o, _outcome(o, PUBLISHED if n % 2 else QUARANTINED)) for n, o in enumerate(objects)
                        if n % 3])
    done, todo = record.split_done([*objects, _obj(1, fingerprint="changed")])
    assert done == [o for n, o in enumerate(objects) if n % 3]
    assert todo == [o for n, o in enumerate(objects) if not n % 3] + [_obj(1, fingerprint="changed")]
    assert record.counts() == {PUBLISHED: sum(1 for n in range(1234) if n % 3 and n % 2),
                               QUARANTINED: sum(1 for n in range(1234) if n % 3 and not n % 2)}
    result = record.claim_many(objects, "big")
    assert len(result.claimed) == len(todo) - 1 and len(result.done) == len(done)


def test_concurrent_claimers_never_share_an_object(record_url):
    """Threads racing to claim the same 300 objects, each with its own connection: every object won once."""
    objects = [_obj(n) for n in range(300)]
    won: dict[str, list[str]] = {}
    lock = threading.Lock()

    def claimer(name: str) -> None:
        with open_ingest_record(record_url) as own:
            for start in range(0, len(objects), 25):
                for obj in own.claim_many(objects[start:start + 50], name).claimed:
                    with lock:
                        won.setdefault(obj.uri, []).append(name)

    threads = [threading.Thread(target=claimer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(won) == {o.uri for o in objects}
    # an owner may re-claim its own object (a renewal), but no object has two owners
    assert all(len(set(owners)) == 1 for owners in won.values())


def _process_claimer(url: str, name: str, queue) -> None:
    with open_ingest_record(url) as own:
        result = own.claim_many([_obj(n) for n in range(200)], name)
        queue.put([o.uri for o in result.claimed])


def test_concurrent_claimers_in_processes(record_url):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_claimer, args=(record_url, f"p{n}", queue)) for n in range(3)]
    for proc in procs:
        proc.start()
    claimed = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
    flat = [uri for part in claimed for uri in part]
    assert sorted(flat) == sorted({_obj(n).uri for n in range(200)})  # all claimed, none twice


def test_writer_batches_outcomes_and_releases_claims(record):
    objects = [_obj(n) for n in range(450)]
    owner = new_owner_id("run-1")
    with RecordWriter(record, owner, run_id="run-1", flush_seconds=30, batch_size=200) as writer:
        assert writer.claim(objects).claimed == objects
        for obj in objects:
            writer.record(obj, _outcome(obj, PUBLISHED))
        deadline = time.monotonic() + 10
        while record.counts().get(PUBLISHED, 0) < 400 and time.monotonic() < deadline:
            time.sleep(0.02)  # full batches are written at once, not at the 30 s tick
        assert 400 <= record.counts()[PUBLISHED] <= 450
        while True:  # a batch may commit between the two reads: read again until the count held still
            done, claims = record.counts()[PUBLISHED], record.claims()
            if record.counts()[PUBLISHED] == done:
                break
        assert len(claims) == 450 - done  # released with their records, in the same transaction
    assert 1 <= writer.flushes <= 3  # (the rest on close): never a write per outcome
    assert record.claims() == []
    assert record.counts() == {PUBLISHED: 450}
    assert {record.get(o.uri, o.fingerprint).run_id for o in objects} == {"run-1"}


def test_writer_keeps_outcomes_when_a_write_fails(tmp_path):
    record = SqliteIngestRecord(tmp_path / "r.sqlite")
    writer = RecordWriter(record, "w", flush_seconds=30)
    obj = _obj()
    writer.record(obj, _outcome(obj, PUBLISHED))
    record.close()
    real_record_many = record.record_many
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database unreachable")
        return real_record_many(*args, **kwargs)

    record.record_many = failing
    with pytest.raises(OSError):
        writer.flush()
    writer.close()  # the queued outcome survived the failed write
    assert record.already_done(obj)


def test_record_pickles_by_location(record):
    import pickle

    obj = _obj()
    record.record(obj, _outcome(obj, PUBLISHED))
    copy = pickle.loads(pickle.dumps(record))
    assert copy.url == record.url and copy.already_done(obj)
    copy.close()


def test_writer_rescan_of_ingested_objects_claims_nothing(record):
    objects = [_obj(n) for n in range(30)]
    record.record_many([(o, _outcome(o, PUBLISHED)) for o in objects[:20]])
    with RecordWriter(record, "rescan") as writer:
        result = writer.claim(objects)
        assert sorted(o.uri for o in result.done) == sorted(o.uri for o in objects[:20])
        assert result.claimed == objects[20:]
        assert {c.source_uri for c in record.claims()} == {o.uri for o in objects[20:]}
    assert record.claims() == []  # released on close


def test_claims_of_a_dead_process_on_this_host_are_taken_over_at_once(record):
    """A claimer killed on this machine (SIGKILL: it never released anything) does not block its objects until
    its lease expires; a claimer on another host does."""
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_owner = f"{socket.gethostname()}:{int(dead.stdout)}:crashed-run"
    objects = [_obj(n) for n in range(3)]
    assert record.claim_many(objects[:2], dead_owner).claimed == objects[:2]
    assert record.claim_many(objects[2:], "other-host:1:run").claimed == objects[2:]

    result = record.claim_many(objects, new_owner_id("next-run"))

    assert result.claimed == objects[:2] and result.elsewhere == objects[2:]
    assert {c.owner for c in record.claims()} == {new_owner_id("next-run"), "other-host:1:run"}

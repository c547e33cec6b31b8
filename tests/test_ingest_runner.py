"""``ingest_object`` and ``ProcessIngestPool`` on real IMOS files with the embedded default settings (no Prefect).

Every landing file must end up published (byte-identical), quarantined (original bytes + reason sidecar), or still
in the landing area (system error): never lost.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from ingest_helpers import (
    BAD_NC,
    GOOD_FILES,
    HANDLER_PREFIX,
    IMOS_DIR,
    expected_key,
    good_zip,
    hostile_zip,
)

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, LandingObject, list_landing
from aodncore.ingest.configure import build_settings
from aodncore.ingest.quarantine import REASON_SUFFIX
from aodncore.ingest.runner import ingest_object

GOOD = next(iter(GOOD_FILES))


def _land(landing: Path, *names: str) -> list[Path]:
    landing.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(IMOS_DIR / name, landing / name)) for name in names]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _quarantined(error_dir: Path, name: str) -> tuple[Path, dict]:
    """The single stored copy of ``name`` in the error store (``<id>/<name>``) and its parsed reason sidecar."""
    stored = [p for p in error_dir.rglob(name) if p.is_file()]
    assert len(stored) == 1, stored
    (sidecar,) = stored[0].parent.glob(f"*{REASON_SUFFIX}")
    assert sidecar.name == f"{stored[0].parent.name}{REASON_SUFFIX}"
    return stored[0], json.loads(sidecar.read_text())


@pytest.fixture
def base(tmp_path):
    return tmp_path / "base"


def test_good_file_is_published_byte_identical_and_not_ingested_twice(tmp_path, base):
    (landing_file,) = _land(tmp_path / "landing", GOOD)
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"])
    obj = LandingObject.from_path(landing_file)

    outcome = ingest_object(obj, settings)

    assert outcome.status == PUBLISHED, outcome.error
    assert outcome.check_result == "passed"
    published = base / "published" / expected_key(GOOD)
    assert published.read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    assert outcome.destination.endswith(expected_key(GOOD))
    assert (base / "archive" / settings.pipeline_name / GOOD).read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    assert not landing_file.exists()
    assert not _files(base / "error")
    entry = settings.ledger.get(obj.uri, obj.fingerprint)
    assert entry is not None and entry.status == PUBLISHED
    # the same content landing again is recognised as done
    (again,) = _land(tmp_path / "landing", GOOD)
    assert settings.ledger.already_done(LandingObject.from_path(again))


@pytest.mark.parametrize("name, checks", [(BAD_NC, ["cf:1.6"]), ("good_and_bad.zip", ["cf:1.6"])])
def test_broken_input_is_quarantined_with_its_reason(tmp_path, base, name, checks):
    (landing_file,) = _land(tmp_path / "landing", name)
    settings = build_settings(base_dir=str(base), checks=checks)
    obj = LandingObject.from_path(landing_file)

    outcome = ingest_object(obj, settings)

    assert outcome.status == QUARANTINED
    assert outcome.check_result == "failed"
    stored, reason = _quarantined(base / "error" / settings.pipeline_name, name)
    assert stored.read_bytes() == (IMOS_DIR / name).read_bytes()
    assert outcome.error_uri == stored.as_uri()
    assert reason["source"] == obj.uri
    assert reason["fingerprint"] == obj.fingerprint
    assert reason["error_class"] == "ComplianceCheckFailedError"
    assert reason["error_type"] == "user"
    assert reason["reason"] and reason["failed_checks"]
    assert not landing_file.exists()
    assert not _files(base / "published")
    assert settings.ledger.get(obj.uri, obj.fingerprint).status == QUARANTINED
    assert settings.ledger.already_done(obj)


def test_zip_of_good_files_publishes_every_member(tmp_path, base):
    members = list(GOOD_FILES)[:2]
    (tmp_path / "landing").mkdir()
    landing_zip = good_zip(tmp_path / "landing" / "bundle.zip", members)
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"])

    outcome = ingest_object(LandingObject.from_path(landing_zip), settings)

    assert outcome.status == PUBLISHED, outcome.error
    assert {row["name"] for row in outcome.files} == set(members)
    for member in members:
        assert (base / "published" / expected_key(member)).read_bytes() == (IMOS_DIR / member).read_bytes()
    assert not landing_zip.exists()


def test_zip_escaping_with_dotdot_is_quarantined_and_writes_nothing_outside(tmp_path, base):
    landing = tmp_path / "landing"
    landing.mkdir()
    evil = hostile_zip(landing / "evil.zip")
    evil_bytes = evil.read_bytes()
    settings = build_settings(base_dir=str(base))

    outcome = ingest_object(LandingObject.from_path(evil), settings)

    assert outcome.status == QUARANTINED, outcome
    stored, reason = _quarantined(base / "error" / settings.pipeline_name, "evil.zip")
    assert stored.read_bytes() == evil_bytes
    assert reason["error_type"] == "user"
    assert reason["error_class"] == "InvalidFileFormatError"
    assert "escapes" in reason["reason"] and "../" in reason["reason"]
    # nothing of the member appeared anywhere outside the error store
    assert list(tmp_path.rglob(next(iter(GOOD_FILES)))) == []
    assert not _files(base / "published")


def test_system_error_fails_and_keeps_the_landing_file(tmp_path, base):
    (landing_file,) = _land(tmp_path / "landing", GOOD)
    settings = build_settings(base_dir=str(base), handler=f"{HANDLER_PREFIX}:ExplodingHandler")
    obj = LandingObject.from_path(landing_file)

    outcome = ingest_object(obj, settings)

    assert outcome.status == FAILED
    assert "RuntimeError" in outcome.error and "simulated system failure" in outcome.error
    assert landing_file.read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    assert not _files(base / "published")
    assert settings.ledger.get(obj.uri, obj.fingerprint).status == FAILED
    assert not settings.ledger.already_done(obj)  # a failed object is retried next time


def test_unreachable_error_store_fails_and_keeps_the_landing_file(tmp_path, base, s3):
    (landing_file,) = _land(tmp_path / "landing", BAD_NC)
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"], error_uri="s3://no-such-error-bucket/errors")
    obj = LandingObject.from_path(landing_file)

    outcome = ingest_object(obj, settings)

    assert outcome.status == FAILED
    assert "quarantine failed" in outcome.error
    assert landing_file.read_bytes() == (IMOS_DIR / BAD_NC).read_bytes()
    assert settings.ledger.get(obj.uri, obj.fingerprint).status == FAILED
    assert not settings.ledger.already_done(obj)


def test_process_pool_gives_the_same_outcomes_and_brings_back_the_worker_logs(tmp_path, base, caplog):
    from aodncore.ingest.parallel import ProcessIngestPool

    landing = tmp_path / "landing"
    good = list(GOOD_FILES)[:2]
    _land(landing, *good, BAD_NC)
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"])
    objects = list(list_landing(str(landing)))
    assert len(objects) == 3

    caplog.set_level(logging.INFO, logger="aodncore")
    with ProcessIngestPool(settings, workers=2) as pool:
        outcomes = {obj.name: pool.ingest(obj) for obj in objects}

    assert {name: o.status for name, o in outcomes.items()} == {
        good[0]: PUBLISHED, good[1]: PUBLISHED, BAD_NC: QUARANTINED}
    for name in good:
        assert (base / "published" / expected_key(name)).read_bytes() == (IMOS_DIR / name).read_bytes()
    stored, reason = _quarantined(base / "error" / settings.pipeline_name, BAD_NC)
    assert stored.read_bytes() == (IMOS_DIR / BAD_NC).read_bytes()
    assert list(landing.iterdir()) == []
    for obj in objects:  # recorded in the parent's ledger
        assert settings.ledger.already_done(obj)
    # the handlers ran in other processes; their records were re-emitted here
    handler_lines = [r for r in caplog.records if r.name.startswith("aodncore") and "handler result" in r.getMessage()]
    assert {line.process for line in handler_lines} - {os.getpid()}
    messages = "\n".join(r.getMessage() for r in handler_lines)
    for name in [*good, BAD_NC]:
        assert name in messages


def test_process_pool_workers_see_the_callers_current_environment(tmp_path, base, monkeypatch):
    """The fork server outlives pools; credentials or endpoints set after its start must still reach workers."""
    from ingest_helpers import ENV_MARKER

    from aodncore.ingest.parallel import ProcessIngestPool

    landing = tmp_path / "landing"
    _land(landing, GOOD)
    obj = LandingObject.from_path(landing / GOOD)
    settings = build_settings(base_dir=str(base), handler=f"{HANDLER_PREFIX}:EnvEchoHandler", delete_landing=False)
    monkeypatch.delenv(ENV_MARKER, raising=False)
    with ProcessIngestPool(settings, workers=1) as pool:  # the fork server is running from here on
        assert f"{ENV_MARKER}=None" in pool.ingest(obj).error
    monkeypatch.setenv(ENV_MARKER, "set-later")
    with ProcessIngestPool(settings, workers=1) as pool:
        outcome = pool.ingest(obj)
    assert outcome.status == FAILED
    assert f"{ENV_MARKER}=set-later" in outcome.error


@pytest.mark.parametrize("scratch", ["/run/folder/o-abc", "/elsewhere/o-abc"])
def test_shared_working_path_pattern_matches_what_a_per_object_pattern_matches(scratch):
    """The working-path regex is compiled once per run; it must rewrite text exactly as a pattern built from the
    object's own scratch folder and the roots does."""
    import re

    from aodncore.ingest.runner import _working_paths_pattern

    roots = ("/run/folder", "/tmp/config-tmp")
    text = (f"failed on {scratch}/input/a b.nc and '{scratch}/x.nc' in /run/folder/other/y.nc, "
            "kept /tmp/config-tmp/z.nc, left /run/folderish/w.nc and /elsewhere/o-abcd/v.nc alone")
    per_object = re.compile("|".join(re.escape(f.rstrip("/")) + r"/[^\s'\"]*" for f in (scratch, *roots)))
    shared = _working_paths_pattern(scratch, roots)
    assert [m.span() for m in shared.finditer(text)] == [m.span() for m in per_object.finditer(text)]
    assert shared.sub("<P>", text) == per_object.sub("<P>", text)
    assert _working_paths_pattern(scratch, roots) is shared or scratch.startswith("/elsewhere")


def _reference_describe(describer, text):
    """The describer as it was before lines without a path skipped the path steps (the reference)."""
    from aodncore.ingest.names import scrub, shown

    value = str(text)
    for path in sorted(describer.exact, key=len, reverse=True):
        value = value.replace(path, describer.source)
    value = describer._paths.sub(describer._path, value)
    if shown(describer.name) != describer.name and describer.name:
        value = value.replace(describer.name, shown(describer.name))
    return scrub(value)


@pytest.mark.parametrize("name", ["good.nc", "caf\u00e9 \x1b[31m.nc", os.fsdecode(b"bad\xff.nc")])
def test_describer_rewrites_lines_exactly_as_the_reference(tmp_path, name):
    from aodncore.ingest.runner import _Describer

    obj = LandingObject(uri=f"file://{tmp_path}/landing/{name}", name=name, size=1, fingerprint="f",
                        path=str(tmp_path / "landing" / name))
    scratch = str(tmp_path / "run" / "o-1")
    describe = _Describer(obj, scratch, (str(tmp_path / "run"), None))
    describe.add_copy(f"{scratch}/landing/{name}")
    describe.add_copy(f"{scratch}/processing/{name}")
    lines = [
        "no path at all", f"checked {name}: passed", "", "tab\tand \x1b[0m escape", "ratio 3/4 of /elsewhere/x.nc",
        f"copied {scratch}/processing/{name} to {tmp_path}/run/ImosGenericHandlerab12/collection/{name}",
        f"'{scratch}/landing/{name}' and {tmp_path}/run/other/member.nc\nsecond line {name}",
    ]
    for line in lines:
        assert describe(line) == _reference_describe(describe, line), line


def test_ingest_ids_are_time_then_eight_hex_digits():
    import re

    from aodncore.ingest.runner import new_ingest_id

    ids = {new_ingest_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", value) for value in ids)


def test_handler_input_is_a_hard_link_made_in_a_missing_processing_folder_too(tmp_path):
    from aodncore.ingest.runner import _handler_input

    scratch = tmp_path / "o-1"
    (scratch / "landing").mkdir(parents=True)
    fetched = scratch / "landing" / "a.nc"
    fetched.write_bytes(b"CDF\x01")
    first = _handler_input(str(fetched), str(scratch), "a.nc")  # no processing/ yet: made
    assert os.path.samefile(first, fetched) and first == str(scratch / "processing" / "a.nc")
    os.unlink(first)
    again = _handler_input(str(fetched), str(scratch), "a.nc")  # kept (empty) from the previous object
    assert os.path.samefile(again, fetched)
    with pytest.raises(FileNotFoundError):
        _handler_input(str(scratch / "landing" / "gone.nc"), str(scratch), "gone.nc")

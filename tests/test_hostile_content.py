"""Hostile *content* on the real ingest path: manifests, archives, NetCDF files, checks and archive versions.

Every case lands real IMOS files (good ones) or files crafted here (bad ones) in a landing folder, runs
``aodncore.ingest.runner.ingest_objects`` with the embedded default handler and asserts the exact outcome:
published byte-identical, or quarantined with a reason naming the file and the cause; nothing from outside the
landing area in any store; no traceback in the logs; the other files of the run unaffected.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from ingest_helpers import GOOD_FILES, IMOS_DIR, build_zip, expected_key

from aodncore.ingest import PUBLISHED, QUARANTINED, list_landing
from aodncore.ingest.configure import build_settings
from aodncore.ingest.quarantine import reason_path_for
from aodncore.ingest.runner import ingest_objects
from aodncore.pipeline.defaultconfig import default_config

GOOD, GOOD2 = list(GOOD_FILES)[:2]
SECRET = b"root:x:0:0:secret outside the landing area\n"


# -- harness ---------------------------------------------------------------------------------------------------------

class Run:
    """One ingest run over a landing folder with the embedded defaults under ``base``."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.landing = tmp_path / "landing"
        self.landing.mkdir()
        self.base = tmp_path / "base"
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.secret = self.outside / "passwd"
        self.secret.write_bytes(SECRET)

    def land(self, name: str, data: bytes | None = None, source: str | None = None) -> Path:
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            shutil.copyfile(IMOS_DIR / (source or os.path.basename(name)), path)
        else:
            path.write_bytes(data)
        return path

    def ingest(self, *, only: list[str] | None = None, checks: list[str] | None = None,
               overrides: dict | None = None, handler_params: dict | None = None, source: Path | None = None):
        settings = build_settings(base_dir=str(self.base), checks=checks, handler_params=handler_params)
        if overrides:
            settings = dataclasses.replace(settings, config=default_config(self.base, overrides))
        self.settings = settings
        objects = list(list_landing(str(source or self.landing)))
        if only is not None:
            objects = [obj for obj in objects if obj.name in only]
        outcomes = ingest_objects(objects, settings)
        return {outcome.name: outcome for outcome in outcomes}

    # -- stores -----------------------------------------------------------------------------------------------------

    def store_files(self, store: str) -> list[Path]:
        folder = self.base / store
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []

    def published(self, name: str) -> bytes:
        return (self.base / "published" / expected_key(name)).read_bytes()

    def quarantined(self, name: str) -> tuple[Path, dict]:
        # the error store keeps <handler>/<id>/<name> beside <handler>/<id>/<id>.reason.json
        stored = [p for p in self.store_files("error") if p.name == name]
        assert len(stored) == 1, stored
        sidecar = Path(reason_path_for(str(stored[0])))
        return stored[0], json.loads(sidecar.read_text())

    def assert_secret_nowhere(self) -> None:
        for store in ("published", "archive", "error"):
            for path in self.store_files(store):
                assert SECRET not in path.read_bytes(), f"outside content reached {path}"


@pytest.fixture
def run(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    harness = Run(tmp_path)
    yield harness
    assert "Traceback" not in caplog.text


def assert_quarantined(run: Run, outcomes: dict, name: str, *fragments: str, error_class: str | None = None) -> dict:
    """``name`` quarantined (original bytes kept, landing file removed) with a reason containing ``fragments``."""
    outcome = outcomes[name]
    assert outcome.status == QUARANTINED, (outcome.status, outcome.error)
    landing_file = run.landing / name
    stored, reason = run.quarantined(name)
    assert not landing_file.exists()
    assert reason["error_type"] == "user"
    if error_class:
        assert reason["error_class"] == error_class, reason
    for fragment in fragments:
        assert fragment in reason["reason"], (fragment, reason["reason"])
    assert stored.stat().st_size > 0
    return reason


# -- manifests: allowed roots (issue 6 item 1) -------------------------------------------------------------------------

MANIFEST_KINDS = ["manifest", "json_manifest", "map_manifest", "rsync_manifest", "dir_manifest"]


def manifest_text(kind: str, entries: list[str]) -> bytes:
    """A manifest of ``kind`` naming ``entries`` (dest paths for map manifests are ``X/<basename>``)."""
    if kind == "json_manifest":
        return json.dumps({"files": [{"local_path": entry} for entry in entries]}).encode()
    if kind == "map_manifest":
        return "".join(f"{entry},X/{os.path.basename(entry)}\n" for entry in entries).encode()
    if kind == "rsync_manifest":
        return ("receiving incremental file list\n" + "".join(f">f+++++++++ {entry}\n" for entry in entries)).encode()
    return "".join(f"{entry}\n" for entry in entries).encode()


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_manifest_naming_a_file_outside_the_landing_area_is_quarantined(run, kind):
    run.land(GOOD)
    entry = str(run.outside) if kind == "dir_manifest" else str(run.secret)
    name = f"evil.{kind}"
    run.land(name, manifest_text(kind, [GOOD, entry]))

    outcomes = run.ingest(only=[name])

    reason = assert_quarantined(run, outcomes, name, entry, "outside the allowed manifest roots",
                                "global.manifest_roots", error_class="UnsafeManifestEntryError")
    assert str(run.landing / name) in reason["reason"]  # the landing manifest, not a scratch copy
    assert run.store_files("published") == []
    run.assert_secret_nowhere()
    assert (run.landing / GOOD).exists()  # the entries themselves are untouched


def test_manifest_dotdot_escape_is_quarantined(run):
    run.land("sub/escape.manifest", b"../../outside/passwd\n")

    outcomes = run.ingest()

    outcome = outcomes["escape.manifest"]
    assert outcome.status == QUARANTINED
    _, reason = run.quarantined("escape.manifest")
    assert "'../../outside/passwd'" in reason["reason"] and "outside the allowed manifest roots" in reason["reason"]
    assert run.store_files("published") == []
    run.assert_secret_nowhere()


def test_manifest_dotdot_within_the_landing_area_is_allowed(run):
    run.land(f"data/{GOOD}")
    run.land("manifests/bundle.manifest", f"../data/{GOOD}\n".encode())

    outcomes = run.ingest(only=["bundle.manifest"], checks=["cf:1.6"])

    assert outcomes["bundle.manifest"].status == PUBLISHED, outcomes["bundle.manifest"].error
    assert run.published(GOOD) == (IMOS_DIR / GOOD).read_bytes()


def test_manifest_symlink_leading_out_is_quarantined(run):
    (run.landing / "innocent.nc").symlink_to(run.secret)
    run.land("link.manifest", b"innocent.nc\n")

    outcomes = run.ingest(only=["link.manifest"])

    assert_quarantined(run, outcomes, "link.manifest", "innocent.nc", "symbolic link", str(run.secret),
                       error_class="UnsafeManifestEntryError")
    assert run.store_files("published") == []
    run.assert_secret_nowhere()


def test_manifest_naming_a_missing_file_is_quarantined_not_failed(run):
    run.land(GOOD)
    run.land("gap.manifest", f"{GOOD}\nnot_there.nc\n".encode())

    outcomes = run.ingest(only=["gap.manifest"])

    reason = assert_quarantined(run, outcomes, "gap.manifest", "line 2", "not_there.nc", "doesn't exist",
                                error_class="ManifestEntryMissingError")
    assert "gap.manifest" in reason["reason"]
    assert run.store_files("published") == []  # nothing of the manifest, not even its good first line


def test_manifest_naming_one_file_twice_is_quarantined(run):
    run.land(GOOD)
    run.land("twice.manifest", f"{GOOD}\n./{GOOD}\n".encode())

    outcomes = run.ingest(only=["twice.manifest"])

    assert_quarantined(run, outcomes, "twice.manifest", "line 2", "same file as line 1",
                       error_class="DuplicateManifestEntryError")
    assert run.store_files("published") == []


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_good_manifest_publishes_its_files_byte_identical(run, kind):
    run.land(GOOD)
    run.land(GOOD2)
    name = f"good.{kind}"
    entries = ["."] if kind == "dir_manifest" else [GOOD, str(run.landing / GOOD2)]
    run.land(name, manifest_text(kind, entries))

    outcomes = run.ingest(only=[name], checks=["cf:1.6"])

    assert outcomes[name].status == PUBLISHED, outcomes[name].error
    if kind == "map_manifest":
        for member in (GOOD, GOOD2):
            assert (run.base / "published" / "X" / member).read_bytes() == (IMOS_DIR / member).read_bytes()
    else:
        names = {row["name"] for row in outcomes[name].files}
        assert {GOOD, GOOD2} <= names
        for member in (GOOD, GOOD2):
            assert run.published(member) == (IMOS_DIR / member).read_bytes()
    assert not (run.landing / name).exists()


def test_configured_manifest_roots_replace_the_default(run):
    run.land(GOOD)
    shutil.copyfile(IMOS_DIR / GOOD2, run.outside / GOOD2)
    run.land("allowed.manifest", f"{run.outside / GOOD2}\n".encode())
    run.land("refused.manifest", f"{GOOD}\n".encode())

    outcomes = run.ingest(only=["allowed.manifest", "refused.manifest"],
                          overrides={"global": {"manifest_roots": [run.outside.as_uri()]}})

    assert outcomes["allowed.manifest"].status == PUBLISHED, outcomes["allowed.manifest"].error
    assert run.published(GOOD2) == (IMOS_DIR / GOOD2).read_bytes()
    assert_quarantined(run, outcomes, "refused.manifest", "outside the allowed manifest roots", str(run.outside))


# -- manifests: deletions need the opt-in (issue 6 item 2) -----------------------------------------------------------

def _published_victim(run: Run) -> Path:
    """Publish GOOD first, as an earlier run would have."""
    run.land(GOOD)
    assert run.ingest(only=[GOOD])[GOOD].status == PUBLISHED
    victim = run.base / "published" / expected_key(GOOD)
    assert victim.exists()
    return victim


def test_rsync_deleting_line_without_opt_in_is_refused_and_deletes_nothing(run):
    victim = _published_victim(run)
    run.land("sync.rsync_manifest", f"receiving incremental file list\n*deleting   {GOOD}\n".encode())

    outcomes = run.ingest(only=["sync.rsync_manifest"])

    assert_quarantined(run, outcomes, "sync.rsync_manifest", "line 2", f"deletion of '{GOOD}' refused",
                       "allow_delete_manifests")
    assert victim.read_bytes() == (IMOS_DIR / GOOD).read_bytes()


def test_rsync_deleting_line_with_opt_in_deletes_the_published_file(run):
    victim = _published_victim(run)
    run.land("sync.rsync_manifest", f"receiving incremental file list\n*deleting   {GOOD}\n".encode())

    outcomes = run.ingest(only=["sync.rsync_manifest"],
                          handler_params={"resolve_params": {"allow_delete_manifests": True}})

    assert outcomes["sync.rsync_manifest"].status == PUBLISHED, outcomes["sync.rsync_manifest"].error
    assert not victim.exists()


def test_delete_manifest_without_opt_in_is_refused(run):
    victim = _published_victim(run)
    run.land("drop.delete_manifest", f"{expected_key(GOOD)}\n".encode())

    outcomes = run.ingest(only=["drop.delete_manifest"])

    assert_quarantined(run, outcomes, "drop.delete_manifest", "delete_manifests are not enabled")
    assert victim.exists()


# -- deterministic data errors are quarantined, not failed (issue 6 item 6) ------------------------------------------

def test_zip_whose_members_map_to_one_destination_is_quarantined(run):
    data = (IMOS_DIR / GOOD).read_bytes()
    build_zip(run.landing / "clash.zip", {f"a/{GOOD}": data, f"b/{GOOD}": data})
    run.land(GOOD2)

    outcomes = run.ingest()

    assert_quarantined(run, outcomes, "clash.zip", "same dest_path", expected_key(GOOD),
                       error_class="DuplicateDestinationError")
    assert not (run.base / "published" / expected_key(GOOD)).exists()
    assert outcomes[GOOD2].status == PUBLISHED  # the other file of the run is unaffected
    assert run.published(GOOD2) == (IMOS_DIR / GOOD2).read_bytes()


# -- decompression caps hold while streaming (issue 6 item 7) ----------------------------------------------------------

def _deflated_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _gzip_bomb(path: Path, block: int, repeats: int) -> Path:
    """A gzip file of ``repeats`` concatenated members, each ``block`` zero bytes: tiny, but huge decompressed."""
    member = gzip.compress(b"\x00" * block, compresslevel=9)
    path.write_bytes(member * repeats)
    return path


def test_gzip_bomb_is_refused_at_the_ratio_cap(run):
    bomb = _gzip_bomb(run.landing / "bomb.nc.gz", 16 * 1024 ** 2, 64)  # 1 GiB of zeros in ~1 MB
    bomb_size = bomb.stat().st_size
    run.land(GOOD)

    outcomes = run.ingest()

    reason = assert_quarantined(run, outcomes, bomb.name, "gzip file", "compression ratio above the limit of 100:1",
                                "limits.archive_max_ratio", error_class="InvalidFileFormatError")
    # refused while streaming: at most one chunk past the cap was decompressed, not the whole gigabyte
    written = int(re.search(r"(\d+) bytes decompressed from (\d+)", reason["reason"]).group(1))
    assert written <= 100 * bomb_size + 1024 ** 2
    assert str(bomb) in reason["reason"]  # names the landing file, not a working copy
    assert outcomes[GOOD].status == PUBLISHED
    assert [p.name for p in run.store_files("published")] == [GOOD]
    assert not list((run.base / "work").rglob("bomb.nc*"))  # no partial output left behind


def test_zip_of_many_highly_compressible_members_is_refused_while_extracting(run):
    # the attack on per-member checks: 200 members of 1 MiB each, every member below the ratio threshold
    members = {f"m{index:03d}.bin": b"\x00" * 1024 ** 2 for index in range(200)}
    bomb = _deflated_zip(run.landing / "members.zip", members)
    assert bomb.stat().st_size < 1024 ** 2

    outcomes = run.ingest()

    assert_quarantined(run, outcomes, "members.zip", "compression ratio", "limits.archive_max_ratio")
    assert run.store_files("published") == []


def test_configured_archive_caps_apply(run):
    data = {name: (IMOS_DIR / name).read_bytes() for name in (GOOD, GOOD2)}
    build_zip(run.landing / "two.zip", data)
    cap = max(len(value) for value in data.values()) + 10

    outcomes = run.ingest(overrides={"limits": {"archive_max_total_bytes": cap}})

    assert_quarantined(run, outcomes, "two.zip", "limits.archive_max_total_bytes")
    assert run.store_files("published") == []


@pytest.mark.parametrize("limit, fragment", [
    ({"archive_max_member_bytes": "64 KiB"}, "limits.archive_max_member_bytes"),
    ({"archive_max_members": 1}, "limits.archive_max_members"),
])
def test_member_caps_apply_to_zips_and_gzips(run, limit, fragment):
    big = max([GOOD, GOOD2], key=lambda name: (IMOS_DIR / name).stat().st_size)
    assert (IMOS_DIR / big).stat().st_size > 64 * 1024
    build_zip(run.landing / "pair.zip", {GOOD: (IMOS_DIR / GOOD).read_bytes(),
                                         f"{big}.x": (IMOS_DIR / big).read_bytes()})
    if "member_bytes" in fragment:
        (run.landing / f"{big}.gz").write_bytes(gzip.compress((IMOS_DIR / big).read_bytes()))

    outcomes = run.ingest(overrides={"limits": limit})

    assert_quarantined(run, outcomes, "pair.zip", fragment)
    if "member_bytes" in fragment:
        assert_quarantined(run, outcomes, f"{big}.gz", fragment)
    assert run.store_files("published") == []


# -- truncated and corrupt NetCDF (issue 6 item 3b) --------------------------------------------------------------------

CLASSIC = next(name for name in GOOD_FILES if (IMOS_DIR / name).read_bytes()[:3] == b"CDF")
HDF5 = next(name for name in GOOD_FILES if (IMOS_DIR / name).read_bytes()[:4] == b"\x89HDF")


@pytest.mark.parametrize("name", [CLASSIC, HDF5], ids=["classic", "netcdf4"])
@pytest.mark.parametrize("checks", [None, ["cf:1.6"]], ids=["format-check", "cf"])
def test_truncated_netcdf_is_quarantined(run, name, checks):
    data = (IMOS_DIR / name).read_bytes()
    run.land(name, data[: int(len(data) * 0.9)])
    run.land(GOOD2 if name != GOOD2 else GOOD)

    outcomes = run.ingest(checks=checks)

    reason = assert_quarantined(run, outcomes, name, name, "failed the check step",
                                error_class="ComplianceCheckFailedError")
    (failed,) = reason["failed_checks"]
    assert failed["name"] == name
    assert any("truncated" in line for line in failed["check_log"]), failed
    assert not (run.base / "published" / expected_key(name)).exists()
    assert len(run.store_files("published")) == 1  # the good file


def test_netcdf_cut_by_a_paused_writer_that_netcdf_still_opens_is_quarantined(run, tmp_path):
    import netCDF4
    import numpy as np

    source = tmp_path / "IMOS_ANMN-NRS_TZ_20200101T000000Z_NRSROT_FV01_paused.nc"
    with netCDF4.Dataset(source, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("TIME", None)
        var = ds.createVariable("TEMP", "f8", ("TIME",))
        var[:] = np.arange(20000.0)
    data = source.read_bytes()
    partial = run.land(source.name, data[: int(len(data) * 0.4)])
    with netCDF4.Dataset(partial):  # the netCDF library opens the partial file without complaint
        pass

    outcomes = run.ingest()

    reason = assert_quarantined(run, outcomes, source.name, error_class="ComplianceCheckFailedError")
    assert "record 20000 of variable 'TEMP'" in json.dumps(reason["failed_checks"])
    assert run.store_files("published") == []


def test_truncated_netcdf_inside_a_zip_is_quarantined(run):
    data = (IMOS_DIR / HDF5).read_bytes()
    build_zip(run.landing / "bundle.zip", {HDF5: data[: len(data) // 2], GOOD2: (IMOS_DIR / GOOD2).read_bytes()})

    outcomes = run.ingest()

    reason = assert_quarantined(run, outcomes, "bundle.zip", HDF5, error_class="ComplianceCheckFailedError")
    assert [entry["name"] for entry in reason["failed_checks"]] == [HDF5]
    assert run.store_files("published") == []  # nothing of the zip, not even its good member


# -- checks cannot exhaust the machine (issue 6 item 8) ----------------------------------------------------------------

HUGE = "IMOS_ANMN-NRS_TZ_20200101T000000Z_NRSROT_FV01_huge-variable.nc"


def _huge_variable_file(path: Path, length: int) -> Path:
    """A small NetCDF-4 file whose coordinate variable reads as ``length`` doubles (never written: fill values)."""
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.Conventions = "CF-1.6"
        ds.createDimension("TIME", length)
        time = ds.createVariable("TIME", "f8", ("TIME",), zlib=True, chunksizes=(1 << 20,))
        time.units, time.standard_name, time.axis = "days since 1950-01-01", "time", "T"
        temp = ds.createVariable("TEMP", "f4", ("TIME",), zlib=True, chunksizes=(1 << 20,), fill_value=20.0)
        temp.standard_name, temp.units = "sea_water_temperature", "degrees_Celsius"
    return path


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory):
    """300 million time steps (2.4 GB per variable read) in a few KB: checked uncapped it used > 5 GB."""
    return _huge_variable_file(tmp_path_factory.mktemp("huge") / HUGE, 300_000_000)


def test_checks_past_the_memory_cap_are_quarantined_naming_the_limit(run, huge_file):
    run.land(HUGE, huge_file.read_bytes())
    run.land(GOOD)

    outcomes = run.ingest(checks=["cf:1.6"])

    reason = assert_quarantined(run, outcomes, HUGE, HUGE, "exceeded the memory limit of 2 GiB",
                                "limits.check_memory_bytes", error_class="CheckLimitExceededError")
    assert reason["failed_checks"][0]["check_log"] == [
        "compliance checks exceeded the memory limit of 2 GiB (limits.check_memory_bytes)"]
    assert outcomes[GOOD].status == PUBLISHED
    assert run.published(GOOD) == (IMOS_DIR / GOOD).read_bytes()


def test_checks_past_the_time_cap_are_quarantined_naming_the_limit(run, tmp_path):
    slow = _huge_variable_file(tmp_path / "slow.nc", 40_000_000)  # fits the memory cap, takes many seconds
    run.land(HUGE, slow.read_bytes())

    outcomes = run.ingest(checks=["cf:1.6"], overrides={"limits": {"check_timeout_seconds": 1}})

    assert_quarantined(run, outcomes, HUGE, "exceeded the time limit of 1 s", "limits.check_timeout_seconds",
                       error_class="CheckLimitExceededError")
    assert run.store_files("published") == []


def test_memory_cap_holds_in_the_worker_processes_of_the_pool(run, huge_file):
    from aodncore.ingest.parallel import ProcessIngestPool

    run.land(HUGE, huge_file.read_bytes())
    run.land(GOOD)
    settings = build_settings(base_dir=str(run.base), checks=["cf:1.6"])
    objects = list(list_landing(str(run.landing)))

    with ProcessIngestPool(settings, workers=2) as pool:
        outcomes = {obj.name: pool.ingest(obj) for obj in objects}

    assert_quarantined(run, outcomes, HUGE, "limits.check_memory_bytes", error_class="CheckLimitExceededError")
    assert outcomes[GOOD].status == PUBLISHED


@pytest.mark.usefixtures("prefect_harness")
def test_memory_cap_holds_in_a_prefect_flow_process_with_threads(run, huge_file):
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_file

    landed = run.land(HUGE, huge_file.read_bytes())
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        outcome = ingest_file(str(landed), base_dir=str(run.base), checks=["cf:1.6"], settle_seconds=0)

    assert outcome["status"] == QUARANTINED, outcome
    assert "limits.check_memory_bytes" in outcome["error"]
    _, reason = run.quarantined(HUGE)
    assert reason["error_class"] == "CheckLimitExceededError"


# -- the archive keeps every version (issue 6 item 9) ------------------------------------------------------------------

def _new_version(path: Path, text: str) -> bytes:
    import netCDF4

    with netCDF4.Dataset(path, "a") as ds:
        ds.comment = text
    return path.read_bytes()


def test_relanding_a_new_version_keeps_the_old_one_in_the_archive(run, tmp_path):
    version1 = (IMOS_DIR / GOOD).read_bytes()
    run.land(GOOD)
    assert run.ingest()[GOOD].status == PUBLISHED
    archived = run.base / "archive" / "ImosGenericHandler" / GOOD

    work = tmp_path / GOOD
    work.write_bytes(version1)
    version2 = _new_version(work, "reprocessed")
    run.land(GOOD, version2)
    outcomes = run.ingest()

    assert outcomes[GOOD].status == PUBLISHED, outcomes[GOOD].error
    assert run.published(GOOD) == version2  # the public copy is the new version
    assert archived.read_bytes() == version2  # the archive path handlers see is unchanged...
    stem, extension = os.path.splitext(GOOD)
    (kept,) = [p for p in archived.parent.iterdir() if p.name != GOOD]
    assert kept.name.startswith(f"{stem}.v") and kept.name.endswith(extension)
    assert kept.read_bytes() == version1  # ...and version 1 is still there

    # the same content archived again adds nothing
    run.land(GOOD, version2)
    run.ingest()  # already ingested: skipped, so nothing archived
    assert len(list(archived.parent.iterdir())) == 2


# -- manifests in an S3 landing area -----------------------------------------------------------------------------------

def test_s3_landing_manifest_names_objects_beside_it_and_nothing_outside(tmp_path, s3, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key=f"incoming/data/{GOOD}", Body=(IMOS_DIR / GOOD).read_bytes())
    s3.put_object(Bucket="landing", Key=f"elsewhere/{GOOD2}", Body=(IMOS_DIR / GOOD2).read_bytes())
    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET)
    manifests = {
        "good.manifest": f"data/{GOOD}\n",
        "escape.manifest": f"../elsewhere/{GOOD2}\n",
        "local.manifest": f"{secret}\n",
        "gap.manifest": "data/not_there.nc\n",
    }
    for name, text in manifests.items():
        s3.put_object(Bucket="landing", Key=f"incoming/{name}", Body=text.encode())
    base = tmp_path / "base"
    settings = build_settings(base_dir=str(base))
    objects = [obj for obj in list_landing("s3://landing/incoming/") if obj.name in manifests]

    outcomes = {outcome.name: outcome for outcome in ingest_objects(objects, settings)}

    assert outcomes["good.manifest"].status == PUBLISHED, outcomes["good.manifest"].error
    assert (base / "published" / expected_key(GOOD)).read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    assert "outside the allowed manifest roots" in outcomes["escape.manifest"].error
    assert "s3://landing/elsewhere/" in outcomes["escape.manifest"].error
    assert "outside the allowed manifest roots" in outcomes["local.manifest"].error
    assert "doesn't exist" in outcomes["gap.manifest"].error
    for name in ("escape.manifest", "local.manifest", "gap.manifest"):
        assert outcomes[name].status == QUARANTINED
    published = [p for p in (base / "published").rglob("*") if p.is_file()]
    assert [p.name for p in published] == [GOOD]
    for path in base.rglob("*"):
        assert not path.is_file() or SECRET not in path.read_bytes()
    remaining = {o["Key"] for o in s3.list_objects_v2(Bucket="landing")["Contents"]}
    assert remaining == {f"incoming/data/{GOOD}", f"elsewhere/{GOOD2}"}  # the manifests were dealt with
    assert "Traceback" not in caplog.text


def test_manifest_naming_a_folder_as_a_file_is_quarantined(run):
    (run.landing / "folder.nc").mkdir()
    run.land("dir.manifest", b"folder.nc\n")

    outcomes = run.ingest(only=["dir.manifest"])

    assert_quarantined(run, outcomes, "dir.manifest", "folder.nc", "is not a regular file",
                       error_class="ManifestEntryMissingError")

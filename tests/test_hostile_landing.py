"""A hostile, live landing area, end to end through ``aodncore ingest`` (issue 6: the landing-area items).

Each case puts something a person or program we do not control could leave in a landing folder or S3 prefix, runs
the real CLI on it (real IMOS files, S3 through moto's HTTP server, Prefect through the test harness), and asserts
the exact outcome: published byte-identical, quarantined with a reason naming the source and the cause, or
skipped / waiting / ignored as specified — nothing outside the landing area in any store, no traceback, no forged
output line, every other file unaffected.

Two shared runs (a local landing folder and an S3 prefix, each holding many cases side by side) keep the suite
fast; cases that need a run of their own (re-runs, writers, permissions, crashes) have one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, BAD_PROFILE, GOOD_FILES, IMOS_DIR, expected_key

from aodncore.ingest.quarantine import REASON_SUFFIX

pytestmark = pytest.mark.prefect

GOOD = list(GOOD_FILES)
XBT = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739"  # GOOD_FILES member -> IMOS/SOOP/XBT/
LONG_GOOD = f"{XBT}_{'x' * (255 - len(XBT) - 4)}.nc"  # exactly 255 bytes, a valid IMOS name
LONG_BAD = f"bad_{'y' * (255 - 7)}.nc"
NON_UTF8 = os.fsdecode(f"{XBT}_latin1_".encode() + b"\xe9t\xe9.nc")
NEWLINE = "IMOS_fake.nc\nERROR forged line.nc"
ESCAPE = "colour\x1b[31mRED\x1b[0m.nc"
MARKUP = "[bold red]markup[blink].nc"


def _data(name: str) -> bytes:
    return (IMOS_DIR / name).read_bytes()


@contextlib.contextmanager
def _process_state():
    """What ``restore_process_state`` does, for module-scoped runs: the CLI configures logging and environment."""
    environ = dict(os.environ)
    library_logger = logging.getLogger("aodncore")
    level, propagate = library_logger.level, library_logger.propagate
    root_handlers = list(logging.root.handlers)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        library_logger.setLevel(level)
        library_logger.propagate = propagate
        for handler in list(logging.root.handlers):
            if handler not in root_handlers:
                logging.root.removeHandler(handler)


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    def line(self, name_shown: str) -> str:
        """The one output line of the landing entry shown as ``name_shown``."""
        lines = [line for line in self.out.splitlines() if f" {name_shown}  " in line]
        assert len(lines) == 1, (name_shown, self.out)
        return lines[0]


def run_cli(*argv: str) -> CliRun:
    """``aodncore <argv>`` in this process (inside the Prefect test harness), its exit code and output."""
    import compliance_checker.suite  # noqa: F401 - imported under a redirect, it would wrap sys.stdout for good

    from aodncore.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with _process_state(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    run = CliRun(code, out.buffer.getvalue().decode(), err.buffer.getvalue().decode())
    assert "Traceback" not in run.out + run.err, run
    return run


def _tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes), dotfiles included."""
    if not root.exists():
        return {}
    return {os.fsdecode(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _quarantine_records(error_root: Path) -> dict[str, tuple[dict, bytes]]:
    """Landing source URI -> (reason sidecar, stored bytes) of a local error store (``<id>/<name>`` layout)."""
    records = {}
    for sidecar in error_root.rglob(f"*{REASON_SUFFIX}"):
        reason = json.loads(sidecar.read_text())
        stored = Path(reason["stored_as"].removeprefix("file://"))
        assert stored.parent == sidecar.parent and sidecar.name == f"{stored.parent.name}{REASON_SUFFIX}"
        records[reason["source"]] = (reason, stored.read_bytes())
    return records


def _no_scratch_left(base: Path) -> None:
    work = base / "work" / "tmp"
    assert not work.exists() or list(work.iterdir()) == [], list(work.iterdir())


# -- the shared local run ------------------------------------------------------------------------------------------

@dataclass
class LocalRun:
    area: Path
    landing: Path
    base: Path
    outside: Path
    run: CliRun
    records: dict[str, tuple[dict, bytes]]

    def uri(self, relative: str) -> str:
        return (self.landing / relative).as_uri()


@pytest.fixture(scope="module")
def local_run(prefect_harness, tmp_path_factory) -> LocalRun:
    root = tmp_path_factory.mktemp("hostile-local")
    area, base, outside = root / "area", root / "base", root / "outside"
    landing = area / "incoming"
    (landing / "sub").mkdir(parents=True)
    (area / "incoming2").mkdir()
    outside.mkdir()
    copies = {
        GOOD[0]: GOOD[0], f"sub/{GOOD[1]}": GOOD[1], BAD_NC: BAD_NC, BAD_PROFILE: BAD_PROFILE,
        LONG_GOOD: f"{XBT}.nc", LONG_BAD: BAD_NC, NON_UTF8: f"{XBT}.nc", NEWLINE: f"{XBT}.nc",
        ESCAPE: f"{XBT}.nc", MARKUP: f"{XBT}.nc", ".git/objects/x.nc": GOOD[2], ".DS_Store": BAD_NC,
        f"{GOOD[3]}.reason.json": BAD_NC,
    }
    for relative, source in copies.items():
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMOS_DIR / source, landing / relative)
    shutil.copy(IMOS_DIR / GOOD[4], area / "incoming2" / GOOD[4])  # a neighbour of the source: never touched
    shutil.copy(IMOS_DIR / GOOD[2], outside / GOOD[2])
    (landing / "passwd.nc").symlink_to("/etc/passwd")
    (landing / "elsewhere").symlink_to(outside, target_is_directory=True)
    os.mkfifo(landing / "pipe.nc")

    run = run_cli("ingest", str(area / "incoming"), "--base-dir", str(base), "--check", "cf:1.6", "--settle", "0",
                  "--workers", "2")
    return LocalRun(area, landing, base, outside, run, _quarantine_records(base / "error"))


PUBLISHED_LOCAL = {GOOD[0]: GOOD[0], GOOD[1]: GOOD[1], LONG_GOOD: f"{XBT}.nc"}
UNCLASSIFIED = f"UNCLASSIFIED/{MARKUP}"  # not an IMOS name: the default handler publishes it unclassified


def _published_key(name: str) -> str:
    return expected_key(name) if name in GOOD_FILES else f"IMOS/SOOP/XBT/{name}"


@pytest.mark.parametrize("name", list(PUBLISHED_LOCAL), ids=["top-level", "in-a-subfolder", "255-byte-name"])
def test_good_file_is_published_byte_identical_and_leaves_the_landing_area(local_run, name):
    published = local_run.base / "published" / _published_key(name)
    assert published.read_bytes() == _data(PUBLISHED_LOCAL[name])
    assert local_run.run.line(name).startswith("published ")
    assert not list(local_run.landing.rglob(name))


def test_run_publishes_nothing_else_and_exits_1_for_the_refused_files(local_run):
    assert local_run.run.code == 1
    published = set(_tree(local_run.base / "published"))
    assert published == {_published_key(name) for name in PUBLISHED_LOCAL} | {UNCLASSIFIED}
    assert b"root:" not in b"".join(_tree(local_run.base).values())  # /etc/passwd reached no store
    _no_scratch_left(local_run.base)


REFUSED_LOCAL = {
    BAD_NC: ("ComplianceCheckFailedError", BAD_NC),
    BAD_PROFILE: ("ComplianceCheckFailedError", BAD_PROFILE),
    LONG_BAD: ("ComplianceCheckFailedError", BAD_NC),
    NON_UTF8: ("InvalidFileNameError", f"{XBT}.nc"),
    NEWLINE: ("InvalidFileNameError", f"{XBT}.nc"),
    ESCAPE: ("InvalidFileNameError", f"{XBT}.nc"),
}


@pytest.mark.parametrize("name", list(REFUSED_LOCAL),
                         ids=["not-netcdf", "fails-cf", "255-byte-name", "not-utf8", "newline", "escape"])
def test_refused_file_is_quarantined_with_a_reason_naming_its_source(local_run, name):
    from aodncore.ingest.names import shown

    error_class, original = REFUSED_LOCAL[name]
    source = local_run.uri(name)
    reason, stored = local_run.records[source]
    assert stored == _data(original)
    assert reason["error_type"] == "user" and reason["error_class"] == error_class
    assert reason["name"] == shown(name)
    # the reason names the landing source or the file, never the private working copy
    for text in (reason["reason"], reason["details"] or ""):
        assert "aodncore-run-" not in text and "/work/tmp" not in text
    line = local_run.run.line(shown(name))
    assert line.startswith("quarantined ") and error_class in line
    assert "aodncore-run-" not in line
    assert not list(local_run.landing.rglob(name))


def test_quarantined_copy_keeps_its_name_and_opens_with_the_usual_tools(local_run):
    import netCDF4

    reason, _ = local_run.records[local_run.uri(BAD_PROFILE)]
    stored = Path(reason["stored_as"].removeprefix("file://"))
    assert stored.name == BAD_PROFILE and stored.suffix == ".nc"
    with netCDF4.Dataset(stored) as dataset:
        assert dataset.variables
    long_reason, _ = local_run.records[local_run.uri(LONG_BAD)]
    assert Path(long_reason["stored_as"]).name == LONG_BAD  # 255 bytes still fit: the id is a folder


@pytest.mark.parametrize(("name", "why"), [
    (NON_UTF8, "not valid UTF-8 (byte 0xe9)"),
    (NEWLINE, "control characters (\\u000a)"),
    (ESCAPE, "control characters (\\u001b)"),
])
def test_hostile_names_are_refused_for_what_they_are(local_run, name, why):
    reason, _ = local_run.records[local_run.uri(name)]
    assert why in reason["reason"]
    assert local_run.uri(name) in reason["reason"] or reason["source"] == local_run.uri(name)


def test_names_never_forge_an_output_line_or_a_terminal_colour(local_run):
    text = local_run.run.out + local_run.run.err
    assert "\x1b" not in text
    assert not any(line.startswith("ERROR forged line") for line in text.splitlines())
    assert "IMOS_fake.nc\\u000aERROR forged line.nc" in local_run.run.out
    assert "\\xe9t\\xe9.nc" in local_run.run.out  # undecodable bytes shown, losslessly
    assert local_run.run.line(MARKUP).startswith("published ")  # console markup in a name is just text
    assert (local_run.base / "published" / "UNCLASSIFIED" / MARKUP).read_bytes() == _data(f"{XBT}.nc")


IGNORED_LOCAL = {
    ".DS_Store": "hidden file",
    ".git/": "hidden folder",
    f"{GOOD[3]}.reason.json": "sidecar",
    "passwd.nc": "symbolic link",
    "elsewhere": "symbolic link",
    "pipe.nc": "FIFO",
}


@pytest.mark.parametrize("name", list(IGNORED_LOCAL))
def test_entries_never_ingested_are_reported_once_as_ignored_and_left_alone(local_run, name):
    line = local_run.run.line(name)
    assert line.startswith("ignored ") and IGNORED_LOCAL[name] in line
    assert os.path.lexists(local_run.landing / name.rstrip("/"))


def test_the_hidden_folder_is_reported_once_not_file_by_file(local_run):
    assert "objects" not in local_run.run.out
    assert (local_run.landing / ".git" / "objects" / "x.nc").read_bytes() == _data(GOOD[2])


def test_summary_counts_each_kind(local_run):
    summary = local_run.run.out.strip().splitlines()[-1]
    assert summary == "4 published, 6 quarantined, 6 ignored"


def test_a_neighbouring_folder_is_never_touched(local_run):
    assert (local_run.area / "incoming2" / GOOD[4]).read_bytes() == _data(GOOD[4])
    assert GOOD[4] not in local_run.run.out
    assert (local_run.outside / GOOD[2]).read_bytes() == _data(GOOD[2])  # nor what a symlink points at


# -- the shared S3 run ---------------------------------------------------------------------------------------------

LANDING, PUBLISHED_BUCKET, ERRORS = "hl-landing", "hl-published", "hl-errors"
LONG_KEY_NAME = f"{XBT}_{'z' * 300}.nc"
S3_CASES = {
    # key: (data file, expected status)
    f"incoming/{GOOD[0]}": (GOOD[0], "published"),
    f"incoming/deeper/{GOOD[1]}": (GOOD[1], "published"),
    f"incoming/{BAD_NC}": (BAD_NC, "quarantined"),
    f"incoming/{LONG_KEY_NAME}": (f"{XBT}.nc", "quarantined"),
    "incoming/IMOS bad\rname.nc": (f"{XBT}.nc", "quarantined"),  # (moto refuses keys with a newline)
    "incoming/line\u2028separator.nc": (f"{XBT}.nc", "quarantined"),
    "incoming/x/.": (BAD_NC, "ignored"),
    "incoming/x/..": (BAD_NC, "ignored"),
    "incoming/.hidden.nc": (GOOD[2], "ignored"),
    "incoming/.tmp/partial.nc": (GOOD[2], "ignored"),
    f"incoming/{GOOD[3]}.reason.json": (BAD_NC, "ignored"),
    "incoming/marker/": (BAD_NC, "ignored"),
}
S3_NEIGHBOURS = {f"incoming2/{GOOD[2]}": GOOD[2], f"incoming.nc/{GOOD[3]}": GOOD[3], "incomingX.nc": GOOD[4]}


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    paginator = client.get_paginator("list_objects_v2")
    return [e["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for e in page.get("Contents", [])]


@dataclass
class S3Run:
    client: object
    base: Path
    run: CliRun
    outcomes: dict[str, str]


@pytest.fixture(scope="module")
def s3_run(prefect_harness, moto_endpoint, tmp_path_factory) -> S3Run:
    import urllib.request

    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    try:
        for bucket in (LANDING, PUBLISHED_BUCKET, ERRORS):
            client.create_bucket(Bucket=bucket)
        for key, (name, _) in {**S3_CASES, **{k: (v, None) for k, v in S3_NEIGHBOURS.items()}}.items():
            client.put_object(Bucket=LANDING, Key=key, Body=_data(name))
        client.put_object(Bucket=LANDING, Key="incoming/empty-folder/", Body=b"")  # a folder marker: not a file
        base = tmp_path_factory.mktemp("hostile-s3")

        run = run_cli("ingest", f"s3://{LANDING}/incoming", "--base-dir", str(base), "--upload-uri",
                      f"s3://{PUBLISHED_BUCKET}/data", "--error-uri", f"s3://{ERRORS}/q", "--workers", "2")
        outcomes = {}
        for line in run.out.splitlines()[:-1]:
            status, _, rest = line.partition(" ")
            outcomes[rest.strip().split("  ")[0]] = status
        yield S3Run(client, base, run, outcomes)
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()


def _s3_reasons(s3_run: S3Run) -> dict[str, dict]:
    reasons = {}
    for key in _keys(s3_run.client, ERRORS):
        if key.endswith(REASON_SUFFIX):
            reasons[json.loads(s3_run.client.get_object(Bucket=ERRORS, Key=key)["Body"].read())["source"]] = \
                json.loads(s3_run.client.get_object(Bucket=ERRORS, Key=key)["Body"].read())
    return reasons


@pytest.mark.parametrize("key", list(S3_CASES))
def test_s3_landing_object_gets_its_exact_outcome(s3_run, key):
    from aodncore.ingest.names import shown

    name, status = S3_CASES[key]
    shown_name = shown(key.rsplit("/", 1)[-1] or key.rstrip("/").rsplit("/", 1)[-1] + "/")
    assert s3_run.outcomes.get(shown_name) == status, (shown_name, s3_run.run.out)
    remaining = set(_keys(s3_run.client, LANDING))
    if status in ("published", "quarantined"):
        assert key not in remaining
    else:
        assert key in remaining


def test_s3_published_and_error_stores_hold_exactly_what_they_should(s3_run):
    published = set(_keys(s3_run.client, PUBLISHED_BUCKET))
    assert published == {f"data/{expected_key(GOOD[0])}", f"data/{expected_key(GOOD[1])}"}
    for key in published:
        name = key.rsplit("/", 1)[-1]
        assert s3_run.client.get_object(Bucket=PUBLISHED_BUCKET, Key=key)["Body"].read() == _data(name)
    reasons = _s3_reasons(s3_run)
    assert set(reasons) == {f"s3://{LANDING}/{key}" for key, (_, status) in S3_CASES.items() if status == "quarantined"}
    for source, reason in reasons.items():
        stored_key = reason["stored_as"].removeprefix(f"s3://{ERRORS}/")
        stored = s3_run.client.get_object(Bucket=ERRORS, Key=stored_key)["Body"].read()
        assert stored == _data(S3_CASES[source.removeprefix(f"s3://{LANDING}/")][0])
        assert "aodncore-run-" not in reason["reason"]
    assert s3_run.run.code == 1


def test_s3_key_too_long_for_a_local_path_is_quarantined_not_failed(s3_run):
    reason = _s3_reasons(s3_run)[f"s3://{LANDING}/incoming/{LONG_KEY_NAME}"]
    assert reason["error_class"] == "InvalidFileNameError"
    assert f"{len(LONG_KEY_NAME)} bytes long" in reason["reason"] and "255" in reason["reason"]
    stored_name = reason["stored_as"].rsplit("/", 1)[-1]
    assert len(stored_name.encode()) <= 255 and stored_name.endswith(".nc") and stored_name.startswith(XBT)


def test_s3_source_without_a_slash_names_a_folder_never_its_neighbours(s3_run):
    for key, name in S3_NEIGHBOURS.items():
        assert s3_run.client.get_object(Bucket=LANDING, Key=key)["Body"].read() == _data(name)
        assert f"s3://{LANDING}/{key}" not in s3_run.run.out
    assert "empty-folder" not in s3_run.run.out  # a zero-byte folder marker is no file and no news


def test_s3_source_naming_one_object_takes_exactly_that_object(prefect_harness, s3, tmp_path):
    for bucket in (LANDING, PUBLISHED_BUCKET, ERRORS):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    key = f"one/{GOOD[0]}"
    for extra in (key, f"{key}.gz", f"{key}/child.nc"):
        s3.put_object(Bucket=LANDING, Key=extra, Body=_data(GOOD[0]))

    run = run_cli("ingest", f"s3://{LANDING}/{key}", "--base-dir", str(tmp_path), "--upload-uri",
                  f"s3://{PUBLISHED_BUCKET}/data")

    assert run.code == 0 and run.out.strip().splitlines()[-1] == "1 published"
    assert sorted(_keys(s3, LANDING, "one/")) == [f"{key}.gz", f"{key}/child.nc"]


# -- runs of their own ---------------------------------------------------------------------------------------------

def _land(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(IMOS_DIR / name, folder / name)


def test_already_ingested_content_is_skipped_removed_and_counted(prefect_harness, tmp_path):
    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, GOOD[0])
    first = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")
    assert first.code == 0 and first.out.strip().splitlines()[-1] == "1 published"
    published = base / "published" / expected_key(GOOD[0])
    stamp = published.stat().st_mtime_ns

    _land(landing, GOOD[0], GOOD[1])  # the same content lands again, beside a new file
    second = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")

    assert second.code == 0
    assert second.out.strip().splitlines()[-1] == "1 published, 1 skipped"
    line = second.line(GOOD[0])
    assert line.startswith("skipped ") and "error" not in line
    assert "already ingested (same content); removed from the landing area" in line
    assert list(landing.iterdir()) == []  # the landing area drains
    assert published.stat().st_mtime_ns == stamp  # not published twice


def test_keep_landing_keeps_already_ingested_content(prefect_harness, tmp_path):
    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, GOOD[0])
    run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--keep-landing")

    again = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--keep-landing")

    assert again.code == 0 and again.out.strip().splitlines()[-1] == "1 skipped"
    assert "kept in the landing area" in again.line(GOOD[0])
    assert (landing / GOOD[0]).read_bytes() == _data(GOOD[0])

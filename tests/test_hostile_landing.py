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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, BAD_PROFILE, GOOD_FILES, IMOS_DIR, expected_key, hostile_zip

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


# -- real processes ---------------------------------------------------------------------------------------------------

def _harness_api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def cli_process_command(home: Path, *argv: str, unprivileged: bool = False,
                        environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of :func:`run_cli_process` (the session's Prefect server, no new one;
    ``environ``: variables added)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "AWS_"))}
    env.update(PREFECT_HOME=str(home / "prefect-home"), HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=_harness_api_url(), **(environ or {}))
    command = [sys.executable, "-m", "aodncore.cli", *argv]
    if unprivileged and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return command, env


def run_cli_process(home: Path, *argv: str, unprivileged: bool = False, timeout: float = 300,
                    environ: dict[str, str] | None = None, **popen: object) -> subprocess.CompletedProcess:
    """``aodncore <argv>`` in a process of its own, against the session's Prefect server (``prefect_harness``).

    ``unprivileged``: when the tests run as root, the process runs without the capabilities that let root ignore
    file permissions (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``) — permission checks then apply to it as to any
    other user, while it can still run the installed interpreter (which may live under root's home).
    """
    command, env = cli_process_command(home, *argv, unprivileged=unprivileged, environ=environ)
    return subprocess.run(command, env=env, capture_output=True, text=True, errors="surrogateescape",
                          timeout=timeout, cwd=home, **popen)


# -- half-written files: the settle time ------------------------------------------------------------------------------

class _SlowWriter:
    """Writes a real IMOS file into the landing area a slice at a time, like an upload that pauses and resumes."""

    def __init__(self, path: Path, source: str, pause: float = 0.2, slices: int = 200) -> None:
        import threading

        self.path, self.data, self.pause, self.slices = path, _data(source), pause, slices
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        step = max(1, len(self.data) // self.slices)
        with open(self.path, "wb") as handle:
            for start in range(0, len(self.data), step):
                handle.write(self.data[start:start + step])
                handle.flush()
                if not self.stop.is_set():
                    time.sleep(self.pause)

    def __enter__(self) -> _SlowWriter:
        self.thread.start()
        while not self.path.exists():
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()  # write the rest at once
        self.thread.join()


def test_a_file_still_being_written_is_waiting_left_alone_and_taken_once_complete(prefect_harness, tmp_path):
    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, GOOD[0])
    with _SlowWriter(landing / f"{XBT}.nc", f"{XBT}.nc"):
        run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "1.5")
        partial_size = (landing / f"{XBT}.nc").stat().st_size

    assert run.code == 0  # waiting needs nobody's attention
    assert run.out.strip().splitlines()[-1] == "1 published, 1 waiting (still being written; a later run takes them)"
    line = run.line(f"{XBT}.nc")
    assert line.startswith("waiting ") and "changed again within the settle time of 1.5 s" in line
    assert partial_size < len(_data(f"{XBT}.nc"))
    assert not (base / "published" / "IMOS" / "SOOP").exists()  # nothing of the partial file published
    assert (landing / f"{XBT}.nc").read_bytes() == _data(f"{XBT}.nc")  # left in place, complete now

    again = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")
    assert again.out.strip().splitlines()[-1] == "1 published"
    assert (base / "published" / expected_key(f"{XBT}.nc")).read_bytes() == _data(f"{XBT}.nc")


def test_a_writer_resuming_between_listing_and_fetch_leaves_the_file_waiting(prefect_harness, tmp_path):
    from aodncore.ingest import progress

    landing, base = tmp_path / "landing", tmp_path / "base"
    data = _data(GOOD[0])
    (landing).mkdir()
    (landing / GOOD[0]).write_bytes(data[: len(data) // 2])

    def resume_writing(event: str, payload: object) -> None:  # the plan is made: now the writer resumes
        if event == "planned":
            with open(landing / GOOD[0], "ab") as handle:
                handle.write(data[len(data) // 2:])

    progress.add_listener(resume_writing)
    try:
        run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")
    finally:
        progress.remove_listener(resume_writing)

    assert run.code == 0
    line = run.line(GOOD[0])
    assert line.startswith("waiting ") and "content changed since it was listed" in line
    assert _tree(base / "published") == {} and _tree(base / "error") == {}
    assert (landing / GOOD[0]).read_bytes() == data


def test_scheduled_and_served_scans_hold_back_fresh_files_for_tens_of_seconds(prefect_harness, tmp_path):
    from aodncore.limits import LANDING_SETTLE_SECONDS
    from aodncore.prefect.deployments import build_deployments
    from aodncore.prefect.flows import ingest_landing

    assert LANDING_SETTLE_SECONDS.default >= 10
    landing = tmp_path / "landing"
    _land(landing, GOOD[0])

    outcomes = ingest_landing(str(landing), base_dir=str(tmp_path / "base"))["outcomes"]  # the deployments' defaults

    assert [(o["status"], o["name"]) for o in outcomes] == [("waiting", GOOD[0])]
    assert "settle time of 30 s" in outcomes[0]["note"]
    assert (landing / GOOD[0]).exists()
    landing_deployment, _ = build_deployments([str(landing)], interval=60)
    assert "settle_seconds" not in landing_deployment.parameters  # so the flow's safe default applies


# -- dry run --------------------------------------------------------------------------------------------------------

def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            info = path.lstat()
            found[str(path)] = (info.st_size, info.st_mtime_ns)
    return found


def test_dry_run_lists_every_entry_with_its_fate_and_changes_nothing(prefect_harness, tmp_path):
    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, GOOD[0])
    run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--keep-landing")
    _land(landing / "new", GOOD[1])
    (landing / ".partial.nc").write_bytes(b"x")
    time.sleep(max(0.0, 2.0 - (time.time() - (landing / "new" / GOOD[1]).stat().st_ctime)))
    _land(landing, f"{XBT}.nc")  # fresh: still settling
    before = _snapshot(landing, base)

    run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "2", "--dry-run")

    assert run.code == 0
    assert run.line(GOOD[0]).startswith("skipped ") and "already ingested" in run.line(GOOD[0])
    assert run.line(GOOD[1]).startswith("would ingest ")
    assert run.line(f"{XBT}.nc").startswith("waiting ") and "settle time of 2 s" in run.line(f"{XBT}.nc")
    assert run.line(".partial.nc").startswith("ignored ") and "hidden file" in run.line(".partial.nc")
    assert run.out.strip().splitlines()[-1] == ("dry run (settle time 2 s), nothing changed: 1 to ingest, 1 skipped, "
                                               "1 waiting (still being written; a later run takes them), 1 ignored")
    assert _snapshot(landing, base) == before


def test_dry_run_on_a_new_base_dir_creates_nothing_and_reads_the_configured_settle_time(tmp_path):
    from aodncore.pipeline.defaultconfig import default_pipeline_config

    landing = tmp_path / "landing"
    _land(landing, GOOD[0])
    pipeline_config = default_pipeline_config(tmp_path / "data")
    pipeline_config["limits"] = {"landing_settle_seconds": 0}
    config = tmp_path / "pipeline.conf"
    config.write_text(json.dumps(pipeline_config))

    run = run_cli("ingest", str(landing), "--config", str(config), "--dry-run")

    assert run.line(GOOD[0]).startswith("would ingest ")
    assert run.out.strip().splitlines()[-1] == "dry run (settle time 0 s), nothing changed: 1 to ingest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing", "pipeline.conf"]  # no stores, no record


# -- scratch folders of killed runs -----------------------------------------------------------------------------------

_HOLD_RUN_FOLDER = """
import sys, time
from aodncore.ingest.scratch import run_scratch
with run_scratch(sys.argv[1]) as scratch:
    (scratch.path / "o-inflight").mkdir()
    print(scratch.path, flush=True)
    time.sleep(120)
"""


def test_the_next_run_removes_scratch_of_killed_runs_and_never_a_live_runs(prefect_harness, tmp_path):
    import signal
    import subprocess
    import sys

    from aodncore.ingest.scratch import sweep_stale_scratch

    landing, base = tmp_path / "landing", tmp_path / "base"
    work = base / "work" / "tmp"
    work.mkdir(parents=True)
    _land(landing, GOOD[0])
    # a run killed earlier on this host: marker with a process that is gone, lock free
    dead = work / "aodncore-run-20200101T000000-999999-deadbeef"
    (dead / "o-123" / "landing").mkdir(parents=True)
    (dead / "o-123" / "landing" / GOOD[1]).write_bytes(_data(GOOD[1]))
    (dead / "owner.lock").touch()
    (dead / "owner.json").write_text(json.dumps({"host": os.uname().nodename, "pid": 2 ** 22 + 1,
                                                 "process_start": "1", "created": 0}))
    unrelated = work / "somebody-elses-folder"
    unrelated.mkdir()
    # a live run on the same base dir (another process holding its run folder)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_RUN_FOLDER, str(work)], stdout=subprocess.PIPE, text=True)
    try:
        live = Path(holder.stdout.readline().strip())
        assert live.is_dir()

        run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")

        assert run.code == 0
        assert not dead.exists()
        assert (live / "o-inflight").is_dir()  # the live run's folder is untouched
        assert unrelated.is_dir()  # not ours: left alone
        assert sorted(p.name for p in work.iterdir()) == sorted([live.name, unrelated.name])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # killed: its folder is stale now, and goes with the next sweep
    assert live.exists()
    assert sweep_stale_scratch(work) == [live]
    assert sorted(p.name for p in work.iterdir()) == [unrelated.name]


_HOLD_RELEASING_RUN_FOLDER = """
import os, sys, time
from aodncore.ingest.scratch import run_scratch
with run_scratch(sys.argv[1]) as scratch:
    (scratch.path / "o-inflight").mkdir()
    os.unlink(scratch.path / "owner.lock")  # as its removal does, files first, when the run ends
    print(scratch.path, flush=True)
    time.sleep(120)
"""


def test_a_run_folder_whose_run_was_killed_while_removing_it_goes_with_the_next_sweep(tmp_path):
    """Killed while its folder was being removed (lock file gone, owner marker not yet): stale at once, not after a
    minute's grace; a live run in the same state is left alone."""
    import signal

    from aodncore.ingest.scratch import sweep_stale_scratch

    work = tmp_path / "work"
    work.mkdir()
    killed = subprocess.Popen([sys.executable, "-c", _HOLD_RELEASING_RUN_FOLDER, str(work)], stdout=subprocess.PIPE,
                              text=True)
    live = subprocess.Popen([sys.executable, "-c", _HOLD_RELEASING_RUN_FOLDER, str(work)], stdout=subprocess.PIPE,
                            text=True)
    try:
        stale, alive = Path(killed.stdout.readline().strip()), Path(live.stdout.readline().strip())
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert (stale / "owner.json").exists() and not (stale / "owner.lock").exists()

        assert sweep_stale_scratch(work) == [stale]
        assert (alive / "o-inflight").is_dir()
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert sweep_stale_scratch(work) == [alive]


# -- hostile names where people read them -----------------------------------------------------------------------------

def test_verbose_logs_show_hostile_names_escaped_without_logging_errors(prefect_harness, tmp_path):
    """A real ``aodncore ingest --verbose`` process: its console log lines, not just the records."""
    landing, base = tmp_path / "landing", tmp_path / "base"
    landing.mkdir()
    for name in (NON_UTF8, NEWLINE, ESCAPE):
        shutil.copy(IMOS_DIR / f"{XBT}.nc", landing / name)

    result = run_cli_process(tmp_path, "ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--verbose")

    text = result.stdout + result.stderr
    assert "Logging error" not in text and "UnicodeEncodeError" not in text and "Traceback" not in text
    assert "\x1b[31mRED" not in text and "\udce9" not in text
    assert not any(line.startswith("ERROR forged line") for line in text.splitlines())
    assert "quarantined" in result.stderr and "%E9t%E9.nc" in result.stderr  # the log lines name the file
    assert "IMOS_fake.nc\\u000aERROR forged line.nc" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "3 quarantined" and result.returncode == 1


def test_console_table_prints_names_as_text_not_markup_or_terminal_codes(prefect_harness, tmp_path, monkeypatch):
    from rich.console import Console

    import aodncore.cli

    landing, base = tmp_path / "landing", tmp_path / "base"
    landing.mkdir()
    for name in (MARKUP, ESCAPE):
        shutil.copy(IMOS_DIR / f"{XBT}.nc", landing / name)
    screen = io.StringIO()
    monkeypatch.setattr(aodncore.cli, "out", Console(file=screen, force_terminal=True, width=400))

    run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0")

    table = screen.getvalue()
    assert run.code == 1 and "ingest summary" in table
    assert MARKUP in table  # shown literally, not interpreted as console markup
    assert "colour\\u001b[31mRED\\u001b[0m.nc" in table and "\x1b[31mRED" not in table


def test_flow_artifact_and_run_logs_show_names_escaped(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from aodncore.prefect.flows import ingest_landing

    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(IMOS_DIR / f"{XBT}.nc", landing / ESCAPE)
    (landing / ".hidden").write_bytes(b"x")

    state = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), settle_seconds=0, return_state=True)

    flow_run_id = state.state_details.flow_run_id
    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        for _ in range(50):
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            if any("quarantined in" in log.message for log in logs):
                break
            time.sleep(0.2)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    messages = "\n".join(log.message for log in logs)
    assert "\x1b" not in messages and "colour\\u001b[31mRED" in messages
    assert "ignored" in messages and ".hidden" in messages  # reported once in the run log, with the reason
    (table,) = [a for a in artifacts if a.type == "table"]
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    assert sorted(row["name"] for row in rows) == sorted([".hidden", "colour\\u001b[31mRED\\u001b[0m.nc"])
    assert {row["status"] for row in rows} == {"ignored", "quarantined"}


# -- unreadable landing files ----------------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="as root, needs setpriv (util-linux) to drop the permission-override capabilities")
def test_an_unreadable_landing_file_is_its_own_outcome_and_every_other_file_proceeds(prefect_harness, tmp_path):
    """The CLI runs without the privilege to ignore file permissions (tests run as root, who can read anything)."""
    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, GOOD[0], GOOD[1], BAD_NC)
    _land(landing / "locked", GOOD[2])
    os.chmod(landing / GOOD[1], 0o000)  # a file nobody may read
    os.chmod(landing / "locked", 0o000)  # and a folder nobody may list
    try:
        result = run_cli_process(tmp_path, "ingest", str(landing), "--base-dir", str(base), "--settle", "0",
                                 unprivileged=True)
    finally:
        os.chmod(landing / GOOD[1], 0o644)
        os.chmod(landing / "locked", 0o755)

    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert "PermissionError" not in result.stdout
    assert result.returncode == 1  # a failed file needs attention
    lines = {line.split()[1]: line for line in result.stdout.strip().splitlines()[:-1]}
    assert lines[GOOD[0]].startswith("published ")
    assert lines[BAD_NC].startswith("quarantined ")
    assert lines[GOOD[1]].startswith("failed ") and "cannot read the landing file: Permission denied" in lines[GOOD[1]]
    assert lines["locked/"].startswith("failed ") and "cannot list the folder: Permission denied" in lines["locked/"]
    assert result.stdout.strip().splitlines()[-1] == "1 published, 1 quarantined, 2 failed"
    assert (base / "published" / expected_key(GOOD[0])).read_bytes() == _data(GOOD[0])
    assert (landing / GOOD[1]).read_bytes() == _data(GOOD[1])  # kept for a retry
    assert (landing / "locked" / GOOD[2]).read_bytes() == _data(GOOD[2])
    _no_scratch_left(base)


# -- SIGKILL at random points ----------------------------------------------------------------------------------------

def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def system_tmp():
    """A temporary folder for the runs of a test (short, in /tmp: socket paths live there), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="sk-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_sigkill_at_random_points_then_a_rerun_loses_nothing_and_leaves_nothing_behind(prefect_harness, tmp_path,
                                                                                      system_tmp):
    """Three ``aodncore ingest`` runs over good and bad files are killed (SIGKILL, whole process group) at random
    points — during start-up and while files are processed — then a run completes. Seeded: reproducible."""
    import random
    import signal

    from aodncore.ingest.ledger import IngestLedger

    rng = random.Random(20240611)
    landing, base = tmp_path / "landing", tmp_path / "base"
    good = [*GOOD[:4], f"{XBT}.nc"]
    bad = [BAD_NC, "evil.zip"]  # not NetCDF; a zip whose member escapes with '..'
    _land(landing, *good, BAD_NC)
    hostile_zip(landing / "evil.zip")
    originals = {name: (landing / name).read_bytes() for name in good + bad}
    work = base / "work" / "tmp"
    argv = ("ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--workers", "2")
    # the runs' own temporary folder, to see what killed runs leave in it
    environ = {"TMPDIR": str(system_tmp)}

    def run_folders() -> set[str]:
        return {p.name for p in work.glob("aodncore-run-*")}

    for attempt in ("start-up", "listing and fetching", "publishing"):
        before, published_before = run_folders(), len(_tree(base / "published"))
        command, env = cli_process_command(tmp_path, *argv, environ=environ)
        process = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == "start-up":
            time.sleep(rng.uniform(0.5, 2.0))
        elif attempt == "listing and fetching":  # its own run folder exists: it is planning or processing
            _wait_for(lambda running=process, old=before: running.poll() is not None or run_folders() - old, 90)
            time.sleep(rng.uniform(0.0, 1.0))
        else:  # it has published something: kill it among the files
            _wait_for(lambda running=process, old=published_before: running.poll() is not None
                      or len(_tree(base / "published")) > old, 90)
            time.sleep(rng.uniform(0.0, 0.3))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    killed_runs_left = sorted(path.name for path in system_tmp.iterdir())
    final = run_cli_process(tmp_path, *argv, environ=environ)

    assert "Traceback" not in final.stdout + final.stderr, final.stderr[-3000:]
    assert final.returncode in (0, 1) and "failed" not in final.stdout.strip().splitlines()[-1], final.stdout
    # the landing area drained: every file published or quarantined
    assert [p.name for p in landing.iterdir()] == []
    # nothing partial published, nothing published twice: exactly the good files, byte-identical, no leftovers
    assert _tree(base / "published") == {expected_key(name): originals[name] for name in good}
    # nothing lost: each bad file in the error store (original bytes), and no good file there
    records = _quarantine_records(base / "error")
    assert {reason["source"] for reason, _ in records.values()} == {(landing / name).as_uri() for name in bad}
    for source, (reason, stored) in records.items():
        assert stored == originals[source.rsplit("/", 1)[-1]] and reason["error_type"] == "user"
    archived = _tree(base / "archive")
    for name in good:
        copies = [data for path, data in archived.items() if path.rsplit("/", 1)[-1] == name]
        assert copies and all(data == originals[name] for data in copies), name
    # the record agrees, and no working folder is left behind
    with IngestLedger(base / "ingest-record.sqlite") as ledger:
        for name in good:
            assert ledger.history((landing / name).as_uri())[-1].status == "published", name
    assert not list(work.glob("aodncore-run-*")), list(work.iterdir())
    assert [p for p in work.rglob("*")] == []
    # nor a socket folder (worker links, the fork server's) of any run, killed or not, in the temporary folder
    assert sorted(system_tmp.iterdir()) == [], killed_runs_left


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_system_error_is_failed_and_its_lines_name_the_landing_source_not_the_working_copy(prefect_harness,
                                                                                              tmp_path):
    from ingest_helpers import EXPLODE_MARKER

    landing, base = tmp_path / "landing", tmp_path / "base"
    name = f"IMOS_ANMN_{EXPLODE_MARKER}_20170201T000000Z_NRSDAR_FV01.nc"
    landing.mkdir()
    shutil.copy(IMOS_DIR / GOOD[0], landing / name)
    collect = _Collect()
    logging.getLogger("aodncore").addHandler(collect)
    try:
        run = run_cli("ingest", str(landing), "--base-dir", str(base), "--settle", "0",
                      "--handler", "ingest_helpers:SelectiveExplodingHandler")
    finally:
        logging.getLogger("aodncore").removeHandler(collect)

    assert run.code == 1
    line = run.line(name)
    assert line.startswith("failed ") and f"simulated system failure for {(landing / name).as_uri()}" in line
    tracebacks = [m for m in collect.messages if "Traceback (most recent call last)" in m]
    assert tracebacks and all(f"failure for {(landing / name).as_uri()}" in m for m in tracebacks)
    for message in collect.messages:
        assert "aodncore-run-" not in message and "/processing/" not in message, message
    assert (landing / name).read_bytes() == _data(GOOD[0])  # kept for a retry

"""Quarantined or failed: the ingest layer's classification of handler errors (``aodncore.ingest.classify``).

Deterministic errors about the input quarantine the landing object even when their classic class is a system
error; storage, configuration and crash errors fail it (kept for a retry). Real IMOS files, real handlers, a real
SMTP server for the notification rule, the Prefect test harness for the final state.
"""

from __future__ import annotations

import email
import errno
import json
import shutil
import socket
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from ingest_helpers import GOOD_FILES, IMOS_DIR, build_zip

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, LandingObject
from aodncore.ingest.classify import INPUT_ERROR_CLASSES, classify_error, environment_failure, is_data_error
from aodncore.ingest.configure import build_settings
from aodncore.ingest.quarantine import REASON_SUFFIX
from aodncore.ingest.runner import ingest_object
from aodncore.pipeline import exceptions as exc
from aodncore.pipeline.imoshandler import ImosGenericHandler

GOOD = next(iter(GOOD_FILES))
ALLOWED_XBT = [r"IMOS_SOOP-XBT_.*\.nc$"]


# -- handlers raising the errors real dataset handlers raise ---------------------------------------------------------


class AllowedRegexesHandler(ImosGenericHandler):
    """Accepts only SOOP-XBT file names (``allowed_regexes``: classic ``InvalidInputFileError``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allowed_regexes", ALLOWED_XBT)
        super().__init__(*args, **kwargs)


class ExpectedMemberHandler(ImosGenericHandler):
    """A zip must hold a ``README.txt``; without it the handler raises the classic ``MissingFileError``."""

    def preprocess(self) -> None:
        names = [f.name for f in self.file_collection]
        if "README.txt" not in names:
            raise exc.MissingFileError(f"'{self.file_basename}' holds no README.txt (members: {names})")


class UnreadableHandler(ImosGenericHandler):
    """Wraps a permission error in ``InvalidInputFileError``: an environment failure, not bad data."""

    def preprocess(self) -> None:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/shared/lookup-table.csv")
        except PermissionError as error:
            raise exc.InvalidInputFileError(f"cannot read the lookup table: {error}") from error


class StorageDownHandler(ImosGenericHandler):
    def process(self) -> None:
        raise exc.StorageBrokerError("upload store unreachable: connection refused")


class BadConfigHandler(ImosGenericHandler):
    def process(self) -> None:
        raise exc.InvalidConfigError("harvester map 'x' is not configured")


def _ref(cls: type) -> str:
    return f"{__name__}:{cls.__name__}"


def _land(landing: Path, name: str, source: Path | None = None) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source or IMOS_DIR / GOOD, landing / name))


def _stored(error_dir: Path, name: str) -> dict:
    (copy,) = [p for p in error_dir.rglob(name) if p.is_file()]
    (sidecar,) = copy.parent.glob(f"*{REASON_SUFFIX}")
    return json.loads(sidecar.read_text())


def _ingest(tmp_path: Path, path: Path, handler: str, **params):
    settings = build_settings(handler=handler, base_dir=str(tmp_path / "base"), handler_params=params or None)
    return ingest_object(LandingObject.from_path(path), settings)


# -- the rule --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [
    exc.ComplianceCheckFailedError("x.nc failed cf:1.6"),
    exc.InvalidFileNameError("bad name"),
    exc.InvalidFileContentError("bad content"),
    exc.InvalidFileFormatError("not NetCDF"),
    exc.CheckLimitExceededError("check ran out of memory"),
    exc.InvalidInputFileError("input file 'x.nc' does not match any patterns in the allowed_regexes list"),
    exc.MissingFileError("file 'member.nc' doesn't exist"),
    exc.AttributeValidationError("dest_path 'x' does not match allowed_dest_path_regexes"),
    exc.DuplicatePipelineFileError("x.nc already in collection"),
    exc.UnmatchedFilesError("files with UNSET publish_type found"),
    exc.UnmappedFilesError("no matching harvester(s) found"),
    exc.UnexpectedCsvFilesError("No db_objects match these pipeline files"),
])
def test_errors_about_the_input_are_quarantined(error):
    assert classify_error(error) == QUARANTINED


@pytest.mark.parametrize("error", [
    exc.StorageBrokerError("store down"),
    exc.InvalidStoreUrlError("no such store"),
    exc.InvalidConfigError("bad config"),
    exc.MissingConfigParameterError("no upload_uri"),
    exc.InvalidCheckSuiteError("no suite 'x'"),
    exc.InvalidSQLConnectionError("database down"),
    exc.GeonetworkConnectionError("catalogue down"),
    exc.AttributeNotSetError("dest_path not set"),
    exc.HandlerAlreadyRunError("ran twice"),
    RuntimeError("a bug"),
    KeyError("missing key"),
    KeyboardInterrupt(),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_configuration_storage_and_crash_errors_fail(error):
    assert classify_error(error) == FAILED


def _raised_from(error: BaseException, cause: BaseException, *, implicit: bool = False) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            if implicit:
                raise error  # noqa: B904 - the implicit context is what is being tested
            raise error from inner
    except BaseException as outer:
        return outer


@pytest.mark.parametrize("cause", [
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.EIO, "Input/output error"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    TimeoutError("timed out"),
    exc.StorageBrokerError("store down"),
])
@pytest.mark.parametrize("implicit", [False, True])
def test_an_input_error_raised_because_of_the_environment_fails(cause, implicit):
    error = _raised_from(exc.InvalidInputFileError("cannot read the input"), cause, implicit=implicit)
    assert environment_failure(error) is cause
    assert classify_error(error) == FAILED


def test_a_botocore_failure_in_the_chain_fails():
    from botocore.exceptions import ClientError, EndpointConnectionError

    refused = ClientError({"Error": {"Code": "PreconditionFailed", "Message": "ETag changed"}}, "GetObject")
    assert classify_error(_raised_from(exc.InvalidInputFileError("replaced during the run"), refused)) == FAILED
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert classify_error(_raised_from(exc.MissingFileError("download failed"), down)) == FAILED


def test_a_missing_file_or_a_content_error_in_the_chain_is_still_about_the_input():
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "zip/README.txt")
    assert classify_error(_raised_from(exc.MissingFileError("zip holds no README.txt"), missing)) == QUARANTINED
    not_netcdf = OSError(-51, "NetCDF: Unknown file format")  # netCDF4's errors carry negative codes
    assert classify_error(_raised_from(exc.InvalidInputFileError("not NetCDF"), not_netcdf)) == QUARANTINED
    suppressed = _raised_from(exc.MissingFileError("CSV file for db object 'x' not found"),
                              PermissionError(errno.EACCES, "denied"))
    suppressed.__cause__, suppressed.__suppress_context__ = None, True  # ``raise … from None``
    assert is_data_error(suppressed)


def test_a_processing_error_is_quarantined_whatever_it_was_raised_from():
    error = _raised_from(exc.InvalidFileFormatError("bad gzip"), OSError(errno.EIO, "Input/output error"))
    assert classify_error(error) == QUARANTINED


def test_every_input_error_class_is_a_classic_system_error_and_documented():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for cls, meaning in INPUT_ERROR_CLASSES.items():
        assert issubclass(cls, exc.PipelineSystemError) and meaning
        assert f"`{cls.__name__}`" in readme


# -- through the ingest runner: real files, real stores ----------------------------------------------------------------


def test_allowed_regexes_refusal_is_quarantined_and_leaves_the_landing_area(tmp_path):
    path = _land(tmp_path / "landing", GOOD)
    outcome = _ingest(tmp_path, path, _ref(AllowedRegexesHandler))
    assert outcome.status == QUARANTINED, outcome
    assert "InvalidInputFileError" in outcome.error and "allowed_regexes" in outcome.error
    assert not path.exists()
    reason = _stored(tmp_path / "base" / "error", GOOD)
    assert reason["error_class"] == "InvalidInputFileError"
    assert reason["error_type"] == "system"  # the handler's own classification (who it notifies) is unchanged
    stored = next(p for p in (tmp_path / "base" / "error").rglob(GOOD) if p.is_file())
    assert stored.read_bytes() == (IMOS_DIR / GOOD).read_bytes()


def test_unmatched_include_regex_is_quarantined(tmp_path):
    path = _land(tmp_path / "landing", GOOD)
    outcome = _ingest(tmp_path, path, "aodncore.pipeline.imoshandler:ImosGenericHandler", include_regexes=["nomatch"])
    assert outcome.status == QUARANTINED and "UnmatchedFilesError" in outcome.error, outcome
    assert not path.exists()
    assert _stored(tmp_path / "base" / "error", GOOD)["error_class"] == "UnmatchedFilesError"
    assert not list((tmp_path / "base" / "published").rglob("*.nc"))


def test_allowed_dest_path_regexes_refusal_is_quarantined_before_anything_is_published(tmp_path):
    path = _land(tmp_path / "landing", GOOD)
    outcome = _ingest(tmp_path, path, "aodncore.pipeline.imoshandler:ImosGenericHandler",
                      allowed_dest_path_regexes=[r"IMOS/SRS/.*"])
    assert outcome.status == QUARANTINED and "AttributeValidationError" in outcome.error, outcome
    assert not list((tmp_path / "base" / "published").rglob("*.nc"))
    assert not list((tmp_path / "base" / "archive").rglob("*.nc"))


def test_a_file_the_archive_should_hold_but_does_not_is_quarantined(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    zipped = build_zip(landing / "delivery.zip", {GOOD: (IMOS_DIR / GOOD).read_bytes()})
    outcome = _ingest(tmp_path, zipped, _ref(ExpectedMemberHandler))
    assert outcome.status == QUARANTINED and "holds no README.txt" in outcome.error, outcome
    assert _stored(tmp_path / "base" / "error", "delivery.zip")["error_class"] == "MissingFileError"
    assert not zipped.exists()


@pytest.mark.parametrize("handler, text", [
    (UnreadableHandler, "Permission denied"),
    (StorageDownHandler, "upload store unreachable"),
    (BadConfigHandler, "is not configured"),
])
def test_environment_configuration_and_storage_errors_fail_and_keep_the_landing_file(tmp_path, handler, text):
    path = _land(tmp_path / "landing", GOOD)
    outcome = _ingest(tmp_path, path, _ref(handler))
    assert outcome.status == FAILED and text in outcome.error, outcome
    assert path.read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    error_dir = tmp_path / "base" / "error"
    assert not error_dir.exists() or not [p for p in error_dir.rglob("*") if p.is_file()]


# -- notification rules are the handler's, unchanged -------------------------------------------------------------------


class _Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector, port
    controller.stop()


def test_a_quarantined_classic_system_error_still_notifies_only_the_owner(tmp_path, smtp):
    from aodncore.pipeline.defaultconfig import default_pipeline_config

    collector, port = smtp
    pipeline_config = default_pipeline_config(tmp_path / "base")
    pipeline_config["mail"].update({"smtp_server": "127.0.0.1", "smtp_port": port, "from": "pipeline@example.org"})
    config_file = tmp_path / "pipeline.conf"
    config_file.write_text(json.dumps(pipeline_config))
    path = _land(tmp_path / "landing", GOOD)
    settings = build_settings(handler=_ref(AllowedRegexesHandler), config_file=str(config_file), handler_params={
        "notify_params": {"error_notify_list": ["email:uploader@example.org"],
                          "owner_notify_list": ["email:owner@example.org"]}})
    outcome = ingest_object(LandingObject.from_path(path), settings)
    assert outcome.status == QUARANTINED, outcome
    assert [envelope.rcpt_tos for envelope in collector.envelopes] == [["owner@example.org"]]
    message = email.message_from_bytes(collector.envelopes[0].content)
    body = "\n".join(part.get_payload(decode=True).decode() for part in message.walk()
                     if part.get_content_type() == "text/plain")
    assert GOOD in body and "allowed_regexes" in body


# -- the Prefect state rules through the flow -------------------------------------------------------------------------


@pytest.mark.prefect
def test_flow_state_with_a_classified_quarantine_and_with_a_failure(prefect_harness, tmp_path):
    from aodncore.prefect.flows import ingest_landing
    from aodncore.prefect.states import QUARANTINED_STATE_NAME

    xbt = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
    landing = tmp_path / "landing"
    _land(landing, xbt, IMOS_DIR / xbt)
    _land(landing, GOOD)  # not an XBT name: refused by allowed_regexes
    state = ingest_landing(str(landing), handler=_ref(AllowedRegexesHandler), base_dir=str(tmp_path / "base"),
                           workers=1, settle_seconds=0, return_state=True)
    assert state.is_completed() and state.name == QUARANTINED_STATE_NAME, state
    assert state.message == "ingest-landing: 1 of 2 quarantined, 1 published"
    statuses = {outcome["name"]: outcome["status"] for outcome in state.result()["outcomes"]}
    assert statuses == {xbt: PUBLISHED, GOOD: QUARANTINED}
    assert list(landing.iterdir()) == []

    _land(landing, GOOD)
    failed = ingest_landing.with_options(retries=0)(
        str(landing), handler=_ref(StorageDownHandler), base_dir=str(tmp_path / "base2"), workers=1, settle_seconds=0,
        return_state=True)
    assert failed.is_failed() and "1 of 1 failed" in failed.message, failed
    assert (landing / GOOD).exists()

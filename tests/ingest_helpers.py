"""Helpers shared by the ingest, CLI and end-to-end tests: handler classes given as ``MODULE:CLASS`` and zip
builders. Importable by name (``ingest_helpers``) from the tests and from worker processes."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import pytest

from aodncore.pipeline import HandlerBase
from aodncore.pipeline.imoshandler import ImosGenericHandler

IMOS_DIR = Path(__file__).parent / "data" / "imos"

#: Real IMOS files that pass ``cf:1.6``, with the destination the default handler gives them.
GOOD_FILES = {
    "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01_NRSROT-1804-SBE39-43_END-20180413T064000Z_C-20200313T000000Z.nc":
        "IMOS/ANMN/NRS",
    "IMOS_ANMN_Z_20170201T000000Z_NRSDAR_FV01.31e4cadf90ba8824645001ea07b74814.nc": "IMOS/ANMN",
    "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc": "IMOS/SOOP/XBT",
    "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc":
        "IMOS/ANMN/NRS",
    "IMOS_SOOP-TRV_B_20100225T073727Z_VMQ9273_FV01_END-20100225T131607Z_C-2016225T100000Z.nc": "IMOS/SOOP/TRV",
}
#: Real files failing ``cf:1.6`` (or not NetCDF at all).
BAD_NC = "not_a_netcdf_file.nc"
BAD_PROFILE = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV00_Profile-BAD_C-20160524T003914Z.nc"

HANDLER_PREFIX = __name__


def expected_key(name: str) -> str:
    """Destination (relative to the published store) of a good file."""
    return f"{GOOD_FILES[name]}/{name}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def build_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip at ``path`` holding ``members`` (arcname -> bytes), arcnames written verbatim (even ``../x``)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in members.items():
            archive.writestr(zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return path


def good_zip(path: Path, names: list[str]) -> Path:
    """A zip of real good files (stored flat)."""
    return build_zip(path, {name: (IMOS_DIR / name).read_bytes() for name in names})


def hostile_zip(path: Path) -> Path:
    """A zip whose member escapes the extraction folder with ``..``."""
    name = next(iter(GOOD_FILES))
    return build_zip(path, {f"../../{name}": (IMOS_DIR / name).read_bytes()})


#: Landing files whose name contains this marker make :class:`SelectiveExplodingHandler` fail with a system error.
EXPLODE_MARKER = "EXPLODE"


@pytest.fixture
def restore_process_state():
    """The CLI configures logging and Prefect environment variables for its process; undo that after a test.

    Also drops root-logger stream handlers added during the test (Prefect configures its console handler lazily,
    at the first run, on whatever ``sys.stderr`` was then: a test's capture stream that is closed afterwards).
    """
    environ = dict(os.environ)
    library_logger = logging.getLogger("aodncore")
    level, propagate = library_logger.level, library_logger.propagate
    root_handlers = list(logging.root.handlers)
    yield
    os.environ.clear()
    os.environ.update(environ)
    library_logger.setLevel(level)
    library_logger.propagate = propagate
    for handler in list(logging.root.handlers):
        if handler not in root_handlers and type(handler).__module__.startswith(("prefect", "logging")):
            logging.root.removeHandler(handler)


class ExplodingHandler(ImosGenericHandler):
    """A handler hit by a system error in its ``process`` hook (not a data error)."""

    def process(self) -> None:
        raise RuntimeError("simulated system failure in process()")


class SelectiveExplodingHandler(ImosGenericHandler):
    """The default handler, except that files named with :data:`EXPLODE_MARKER` hit a system error."""

    def process(self) -> None:
        if EXPLODE_MARKER in str(self.input_file):
            raise RuntimeError(f"simulated system failure for {self.input_file}")


#: :class:`EnvEchoHandler` fails with the value of this environment variable in its message.
ENV_MARKER = "AODNCORE_TEST_ENV_MARKER"


class EnvEchoHandler(ImosGenericHandler):
    """Fails with a system error naming the value of :data:`ENV_MARKER` as the handler's process sees it."""

    def process(self) -> None:
        import os

        raise RuntimeError(f"{ENV_MARKER}={os.environ.get(ENV_MARKER)}")


class ClassicStyleHandler(HandlerBase):
    """A dataset handler as classic client packages write them: hooks, a ``dest_path`` method, a product file."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("harvest_type", None)
        super().__init__(*args, **kwargs)
        from aodncore.pipeline import PipelineFilePublishType

        self.default_addition_publish_type = PipelineFilePublishType.UPLOAD_ONLY
        self.allowed_extensions = [".nc", ".zip"]

    @staticmethod
    def dest_path(path):
        return f"CLASSIC/{os.path.basename(path)}"

    def preprocess(self):
        self.logger.info("classic preprocess saw %d file(s)", len(self.file_collection))

    def process(self):
        from aodncore.pipeline import PipelineFilePublishType

        product = os.path.join(self.products_dir, "summary.txt")
        with open(product, "w") as handle:
            handle.write("\n".join(sorted(f.name for f in self.file_collection)) + "\n")
        self.add_to_collection(product, publish_type=PipelineFilePublishType.UPLOAD_ONLY,
                               dest_path=f"CLASSIC/products/{self.file_basename}.summary.txt")


#: :class:`CredentialCheckingHandler` expects these values (set in its process only, never passed to Prefect).
EXPECTED_AWS_SECRET_ENV = "AODNCORE_TEST_EXPECTED_AWS_SECRET"
EXPECTED_SMTP_PASSWORD_ENV = "AODNCORE_TEST_EXPECTED_SMTP_PASSWORD"


class CredentialCheckingHandler(ImosGenericHandler):
    """Fails with a system error unless the run got its credentials from the Prefect blocks: the AWS secret key in
    the environment and the SMTP password in the config equal what the test expects (values never logged)."""

    def process(self) -> None:
        import os

        aws_ok = os.environ.get("AWS_SECRET_ACCESS_KEY") == os.environ.get(EXPECTED_AWS_SECRET_ENV)
        smtp_ok = self.config.pipeline_config["mail"].get("smtp_pass") == os.environ.get(EXPECTED_SMTP_PASSWORD_ENV)
        if not (aws_ok and smtp_ok):
            raise RuntimeError(f"credentials from blocks missing: aws={aws_ok} smtp={smtp_ok}")


def warmed_checks() -> list[tuple[str, ...]]:
    """The compliance suites warmed up in the calling process (run in a worker process by tests)."""
    from aodncore.pipeline.steps import checklimits

    return sorted(checklimits._warmed)


RUN_SPECIFIC_KEYS = ("ingest_id", "started", "finished", "duration")
"""Outcome keys that differ between two runs of the same files (ids and times)."""


def comparable_outcomes(outcomes: list[dict]) -> list[dict]:
    """``outcomes`` (dicts) without their run-specific keys, for comparing two runs of the same files."""
    return [{key: value for key, value in outcome.items() if key not in RUN_SPECIFIC_KEYS} for outcome in outcomes]


def aodncore_lines(records: list[logging.LogRecord], plain) -> list[tuple[str, str, str]]:
    """(logger, level, message made ``plain``) of aodncore's records, without those that happen once per process
    (so only in the first of two runs): the check fast path's warm-up, the capped calls' fork host starting."""
    return [(r.name, r.levelname, plain(r.getMessage())) for r in records
            if r.name.startswith("aodncore") and r.name != "aodncore.checks.ccfast"
            and not (r.name == "aodncore.util.capped" and r.getMessage().startswith("started fork host"))]

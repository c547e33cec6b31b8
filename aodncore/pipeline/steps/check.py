"""Check step: run each file's check (NetCDF compliance, format, non-empty, table schema) and record the result.

The compliance checker (and its plugin suites) is loaded once per process. Reports are written by the
compliance checker into a private folder inside the run's working folder (``work_dir``: the handler's temporary
folder, else the config's ``global.tmp_dir``; a private temporary folder only when neither is known) and read back,
so a killed check leaves nothing behind once the working folder is cleaned, and check exceptions are collected
through a small ``ComplianceChecker`` subclass, so the runner never replaces ``sys.stdout``/``sys.stderr`` itself.
NetCDF compliance checks take the fast path of :mod:`aodncore.checks.ccfast` (identical results, a fraction of the
CPU) unless it is switched off or the installed compliance-checker is not verified for it.
netCDF work is serialised by :data:`NETCDF_LOCK` (netCDF-C/HDF5 are not thread-safe), so runners can be used
from a thread pool.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from aodncore.checks import ccfast
from aodncore.limits import CheckLimits, check_limits
from aodncore.pipeline.common import CheckResult, FileType, PipelineFileCheckType, validate_checktype
from aodncore.pipeline.exceptions import (
    CheckLimitExceededError,
    ComplianceCheckFailedError,
    InvalidCheckSuiteError,
    InvalidCheckTypeError,
)
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, ensure_pipelinefilecollection
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.steps.basestep import BaseStepRunner
from aodncore.pipeline.steps.checklimits import LimitedCheckResult, check_in_capped_child
from aodncore.util.fileops import find_file, is_netcdf_file
from aodncore.util.ncintegrity import netcdf_integrity_problem

__all__ = [
    "get_check_runner",
    "get_child_check_runner",
    "CheckRunnerAdapter",
    "ComplianceCheckerCheckRunner",
    "FormatCheckRunner",
    "NonEmptyCheckRunner",
    "TableSchemaCheckRunner",
]

#: criteria understood by compliance-checker's ``run_checker``
VALID_CRITERIA = ("lenient", "normal", "strict")

#: output formats understood by compliance-checker's ``run_checker``
VALID_OUTPUT_FORMATS = ("text", "html", "json", "json_new")

_REPORT_SUFFIXES = {"text": ".txt", "html": ".html", "json": ".json", "json_new": ".json"}


def get_check_runner(config: Any, logger: Any, check_params: dict | None = None,
                     work_dir: str | None = None) -> CheckRunnerAdapter:
    """Return the runner that dispatches each file to the check its ``check_type`` asks for (``work_dir``: where
    check reports are written while a file is checked, see the module docstring)."""
    return CheckRunnerAdapter(config, logger, check_params=check_params, work_dir=work_dir)


def get_child_check_runner(check_type: PipelineFileCheckType, config: Any, logger: Any,
                           check_params: dict | None = None, work_dir: str | None = None) -> BaseCheckRunner:
    """Return the runner for one check type (``InvalidCheckTypeError`` for ``UNSET``/``NO_ACTION``)."""
    validate_checktype(check_type)
    parameterless_runners = {
        PipelineFileCheckType.FORMAT_CHECK: FormatCheckRunner,
        PipelineFileCheckType.NONEMPTY_CHECK: NonEmptyCheckRunner,
    }
    if check_type in parameterless_runners:
        return parameterless_runners[check_type](config, logger)
    if check_type is PipelineFileCheckType.TABLE_SCHEMA_CHECK:
        return TableSchemaCheckRunner(config, logger, check_params=check_params)
    if check_type is not PipelineFileCheckType.NC_COMPLIANCE_CHECK:
        raise InvalidCheckTypeError(f"invalid check type: '{check_type.name}'")
    return ComplianceCheckerCheckRunner(config, logger, check_params=check_params, work_dir=work_dir)


class BaseCheckRunner(BaseStepRunner):
    """Base of the check runners: ``run(files)`` sets ``check_result`` on every file given."""

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class CheckRunnerAdapter(BaseCheckRunner):
    """Run every checkable file through the child runner of its check type; fail if any file is non-compliant."""

    def __init__(self, config: Any, logger: Any, check_params: dict | None = None,
                 work_dir: str | None = None) -> None:
        super().__init__(config, logger)
        self.check_params = check_params
        self.work_dir = work_dir

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:
        collection = ensure_pipelinefilecollection(files)
        params = self.check_params or {}
        checkable = PipelineFileCheckType.all_checkable_types
        checked_ids = set()
        for check_type in PipelineFileCheckType:
            if check_type not in checkable:
                continue
            subset = collection.filter_by_attribute_id("check_type", check_type)
            if not subset:
                continue
            runner = get_child_check_runner(check_type, self._config, self._logger, params, work_dir=self.work_dir)
            runner.run(subset)
            checked_ids.update(id(f) for f in subset)

        # report in collection order
        failed = [f for f in collection
                  if id(f) in checked_ids and (f.check_result is None or not f.check_result.compliant)]
        logger = self._get_logger()
        for pipeline_file in failed:
            logger.error("file '%s' failed the %s:%s%s", pipeline_file.name, pipeline_file.check_type.name,
                         os.linesep, pipeline_file.check_log)
        if failed:
            names = [f.name for f in failed]
            message = f"the following files failed the check step: {names}"
            limited = [f for f in failed if isinstance(f.check_result, LimitedCheckResult)]
            if limited:
                details = "; ".join(f"'{f.name}': {f.check_result.log[0]}" for f in limited)
                raise CheckLimitExceededError(f"{message} ({details})")
            raise ComplianceCheckFailedError(message)


# ----------------------------------------------------------------------------------------------------------------
# NetCDF compliance (compliance-checker)
# ----------------------------------------------------------------------------------------------------------------

_load_lock = threading.Lock()
_loaded: dict[str, Any] = {}

#: receives ``(suite, check_name, exception)`` for checks that raised during the current ``run_checker`` call
_check_errors: contextvars.ContextVar[list | None] = contextvars.ContextVar("aodncore_cc_check_errors",
                                                                              default=None)

#: Serialises every netCDF4 access made by the check step. The netCDF-C/HDF5 libraries bundled with netCDF4 are
#: not thread-safe (concurrent ``Dataset`` opens crash the process) and netCDF4 releases the GIL around them.
#: The same lock also keeps compliance-checker's text report, written by swapping ``sys.stdout``, to one thread
#: at a time. Re-entrant so a holder may call helpers that take it again.
NETCDF_LOCK = threading.RLock()


def _compliance_checker():
    """Import compliance-checker, load every available suite (once per process) and return the runner class."""
    runner = _loaded.get("runner")
    if runner is not None:
        return runner
    with _load_lock:
        if "runner" not in _loaded:
            from compliance_checker.runner import CheckSuite, ComplianceChecker

            class _CollectingComplianceChecker(ComplianceChecker):
                """``ComplianceChecker`` that hands check exceptions to the caller instead of printing them."""

                @classmethod
                def check_errors(cls, score_groups, verbose):
                    sink = _check_errors.get()
                    if sink is None:
                        return super().check_errors(score_groups, verbose)
                    occurred = False
                    for suite, (_groups, errors) in score_groups.items():
                        for check_name, (exc, _traceback) in errors.items():
                            sink.append((suite, check_name, exc))
                            occurred = True
                    return occurred

            CheckSuite.load_all_available_checkers()
            _loaded["suite"] = CheckSuite
            _loaded["runner"] = _CollectingComplianceChecker
    return _loaded["runner"]


def available_check_suites() -> frozenset[str]:
    """Names of every compliance-checker suite installed (e.g. ``cf``, ``cf:1.6``, ``imos:1.4``)."""
    _compliance_checker()
    return frozenset(_loaded["suite"].checkers)


def _plain_data(value: Any) -> Any:
    """``value`` with mappings as dicts and sequences as lists (write-once config dicts do not travel well)."""
    if isinstance(value, Mapping):
        return {key: _plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(item) for item in value]
    return value


def _warning_line(exc: BaseException) -> str:
    return f"WARNING: compliance checks did not complete due to error. {type(exc).__name__}: {exc}"


def _trim_blank_lines(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _configured_tmp_dir(config: Any) -> str | None:
    try:
        return config.pipeline_config["global"].get("tmp_dir") or None
    except (AttributeError, KeyError, TypeError):
        return None


class ComplianceCheckerCheckRunner(BaseCheckRunner):
    """Check NetCDF files with the compliance checker, one suite at a time.

    ``check_params``: ``checks`` (required list of suite names), ``verbosity`` (0), ``criteria`` (``normal``;
    one of ``lenient``/``normal``/``strict``), ``skip_checks`` (None), ``output_format`` (``text``),
    ``legacy_cf_verdicts`` (False: True gives compliance-checker 5.0.1's CF verdicts, see
    :mod:`aodncore.checks.cfcompat`) and ``cc_fast_path`` (True: identical results through
    :mod:`aodncore.checks.ccfast`; ``fast_path`` says whether it is used). Unknown suites and invalid criteria or
    formats are refused at construction with ``InvalidCheckSuiteError``. ``work_dir`` is where the checker's
    reports are written (default: the config's ``global.tmp_dir``).
    """

    def __init__(self, config: Any, logger: Any, check_params: dict | None = None,
                 work_dir: str | None = None) -> None:
        super().__init__(config, logger)
        self.work_dir = work_dir or _configured_tmp_dir(config)
        params = check_params or {}
        self._check_params = _plain_data(params)  # to build the same runner in a capped child process
        checks = params.get("checks")
        if isinstance(checks, str):
            checks = [checks]
        if not checks:
            raise InvalidCheckSuiteError("compliance check requested but no check suite specified")
        self.checks = list(checks)
        self.verbosity = params.get("verbosity", 0)
        self.criteria = params.get("criteria", "normal")
        self.skip_checks = params.get("skip_checks")
        self.output_format = params.get("output_format", "text")
        self.legacy_cf_verdicts = bool(params.get("legacy_cf_verdicts", False))
        if self.legacy_cf_verdicts:
            from aodncore.checks.cfcompat import legacy_cf_params

            self.checks, self.skip_checks = legacy_cf_params(self.checks, self.skip_checks)
        self.fast_path = ccfast.enabled(params) and ccfast.install()

        if self.criteria not in VALID_CRITERIA:
            raise InvalidCheckSuiteError(f"invalid compliance check criteria: '{self.criteria}' "
                                         f"(must be one of {list(VALID_CRITERIA)})")
        if self.output_format not in VALID_OUTPUT_FORMATS:
            raise InvalidCheckSuiteError(f"invalid compliance check output_format: '{self.output_format}' "
                                         f"(must be one of {list(VALID_OUTPUT_FORMATS)})")

        available = available_check_suites()
        invalid = [suite for suite in self.checks if suite not in available]
        if invalid:
            raise InvalidCheckSuiteError(f"invalid compliance check suites: {invalid}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(checks={self.checks!r})"

    def warm_up(self) -> None:
        """Make this process ready to check at full speed (suites loaded, fast path warm); call it before forking
        children that check files (see :mod:`aodncore.checks.ccfast`). Does nothing on the plain path."""
        if self.fast_path:
            ccfast.warm_up(self.checks)

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:
        logger = self._get_logger()
        if self.skip_checks:
            logger.info("compliance checks being skipped: %s", self.skip_checks)
        caps = check_limits(self._config)
        for pipeline_file in ensure_pipelinefilecollection(files):
            logger.debug("checking '%s' with compliance suites %s", pipeline_file.name, self.checks)
            pipeline_file.check_result = self.check_file_within_limits(pipeline_file.src_path, caps)

    def check_file_within_limits(self, path: str, caps: CheckLimits | None = None) -> CheckResult:
        """:meth:`check_file` in a child process under the check memory and time caps (see
        :mod:`aodncore.pipeline.steps.checklimits`); in this process when both caps are off."""
        caps = caps if caps is not None else check_limits(self._config)
        if not caps.enabled:
            return self.check_file(path)
        with self._report_folder() as folder:  # made and removed here: also when the child is killed
            return check_in_capped_child(type(self), self._child_params(), path, caps, work_dir=folder)

    @contextlib.contextmanager
    def _report_folder(self, given: str | None = None) -> Any:
        """A private folder for the checker's reports inside :attr:`work_dir`, removed afterwards (``given``: the
        caller's, used as it is)."""
        if given is not None:
            yield given
            return
        if self.work_dir:
            os.makedirs(self.work_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="aodncore-cc-", dir=self.work_dir) as folder:
            yield folder

    def _child_params(self) -> dict[str, Any]:
        """The ``check_params`` this runner was built with (plain data), to build the same runner in the child."""
        return self._check_params

    def check_file(self, path: str, *, report_folder: str | None = None) -> CheckResult:
        """Run every requested suite on one file and combine the results.

        ``report_folder``: a private folder the caller made for this check (the capped child's), where the
        checker's reports are written as they are (each removed once read); by default a new folder inside
        :attr:`work_dir`, removed afterwards."""
        problem = netcdf_integrity_problem(path)
        if problem is not None:  # a truncated file may still pass metadata-only suites: never check it
            return CheckResult(False, (f"invalid NetCDF file: {problem}",))
        with NETCDF_LOCK:
            if not is_netcdf_file(path):
                return CheckResult(False, ("invalid NetCDF file",))

        compliant, had_errors, log = True, False, []
        with self._report_folder(report_folder) as folder:
            results = []
            for suite in self.checks:
                with NETCDF_LOCK:
                    results.append(self._run_suite(path, suite, folder))
        for suite_compliant, suite_errors, suite_log in results:
            compliant = compliant and suite_compliant
            had_errors = had_errors or suite_errors
            if not suite_compliant:
                log.extend(suite_log)
        return CheckResult(compliant, log, had_errors)

    def _run_suite(self, path: str, suite: str, folder: str) -> tuple[bool, bool, list[str]]:
        runner = _compliance_checker()
        errors: list = []
        token = _check_errors.set(errors)
        fd, report_path = tempfile.mkstemp(prefix="report-", suffix=_REPORT_SUFFIXES[self.output_format], dir=folder)
        os.close(fd)
        warning = None
        try:
            run_checker = functools.partial(ccfast.run_checker, runner) if self.fast_path else runner.run_checker
            passed, had_errors = run_checker(
                path, [suite], self.verbosity, self.criteria,
                skip_checks=self.skip_checks, include_checks=None,
                output_filename=report_path, output_format=self.output_format,
            )
        except Exception as e:  # a failure inside the checker is a check failure, not a crash of the step
            passed, had_errors, warning = False, True, _warning_line(e)
        finally:
            _check_errors.reset(token)
            try:
                with open(report_path, encoding="utf-8", errors="replace") as f:
                    report = f.read().splitlines()
            except OSError:
                report = []
            with contextlib.suppress(OSError):
                os.remove(report_path)

        lines = _trim_blank_lines(report)
        if errors:
            had_errors = True
            if warning is None:
                warning = _warning_line(errors[0][2])
            lines.extend(f"{suite_name}.{check_name}: {type(exc).__name__}: {exc}"
                         for suite_name, check_name, exc in errors)
        if warning is not None:
            lines.insert(0, warning)
        compliant = bool(passed) and not had_errors
        return compliant, bool(had_errors), lines


# ----------------------------------------------------------------------------------------------------------------
# simple checks
# ----------------------------------------------------------------------------------------------------------------

class FormatCheckRunner(BaseCheckRunner):
    """Check that each file's content matches the type its extension claims.

    NetCDF files must also be complete: a truncated or corrupt file (:func:`netcdf_integrity_problem`) fails.
    """

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:
        for pipeline_file in ensure_pipelinefilecollection(files):
            file_type = pipeline_file.file_type
            # validators may open the file with netCDF4 (NETCDF, and any type sniffed through it)
            problem = netcdf_integrity_problem(pipeline_file.src_path) if file_type is FileType.NETCDF else None
            if problem is not None:  # said first: the netCDF library's refusal would not say why
                pipeline_file.check_result = CheckResult(False, (f"invalid format: {problem}",))
                continue
            with NETCDF_LOCK:
                compliant = bool(file_type.validator(pipeline_file.src_path))
            log = () if compliant else (f"invalid format: did not validate as type: {file_type.name}",)
            pipeline_file.check_result = CheckResult(compliant, log)


class NonEmptyCheckRunner(BaseCheckRunner):
    """Check that each file is not empty."""

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:
        for pipeline_file in ensure_pipelinefilecollection(files):
            compliant = os.path.getsize(pipeline_file.src_path) > 0
            pipeline_file.check_result = CheckResult(compliant, () if compliant else ("empty file",))


# ----------------------------------------------------------------------------------------------------------------
# table schema
# ----------------------------------------------------------------------------------------------------------------

#: at most this many row errors are listed per file; a summary line says how many there were
TABLE_SCHEMA_MAX_LISTED_ERRORS = 10


def _format_error_data(error_data: Any) -> str:
    """``' field: value'`` for each field of a row error, comma-joined (so the text starts with a space)."""
    return ",".join(f" {key}: {value}" for key, value in dict(error_data or {}).items())


class TableSchemaCheckRunner(BaseCheckRunner):
    """Validate CSV files against the table-schema YAML found under ``harvester.schema_base_dir``.

    The schema of ``<dir>/NAME.csv`` is the first ``*.yaml`` file (recursive listing order) whose name contains
    ``NAME`` (case-insensitive). With ``check_params['tableschema_filename_pattern']`` the part of ``NAME`` that the
    pattern matches at its start is searched instead (``^IMOS_ATF-ACOUSTIC`` makes every acoustic file use
    ``IMOS_ATF-ACOUSTIC*.yaml``); a name the pattern does not match is searched whole. Unlike the classic library
    the searched text is matched literally (regex-escaped) and ``.yaml`` must end the schema's name.

    After ``validate(path)``: ``compliant``, ``compliance_log`` (one entry per row error, the first
    :data:`TABLE_SCHEMA_MAX_LISTED_ERRORS` then a summary line) and ``errors`` (True only when no schema was found).
    """

    def __init__(self, config: Any, logger: Any, check_params: dict | None = None) -> None:
        super().__init__(config, logger)
        self.schema_base_path = config.pipeline_config["harvester"]["schema_base_dir"]
        pattern = (check_params or {}).get("tableschema_filename_pattern")
        self.tableschema_filename_pattern: re.Pattern | None = re.compile(pattern) if pattern is not None else None
        if pattern is not None:
            self._get_logger().log(SYSINFO, "Schema matching pattern is '%s'", pattern)
        self.compliance_log: list[str] | tuple[str, ...] = []
        self.compliant = True
        self.errors = False

    @staticmethod
    def schema_pattern(search: str) -> str:
        """Regex (matched case-insensitively from the start of a file name) selecting the schema file."""
        return rf"(.*){re.escape(search)}(.*)\.yaml$"

    def schema_search_text(self, path: str) -> str:
        """What the schema file's name must contain for ``path``: its stem, or the part the pattern matches."""
        search = os.path.splitext(os.path.basename(path))[0]
        if self.tableschema_filename_pattern is not None:
            matched = self.tableschema_filename_pattern.match(search)
            if matched:
                search = matched.group(0)
        return search

    def find_schema_file(self, path: str) -> str | None:
        """The schema file for ``path``, or None."""
        return find_file(self.schema_base_path, self.schema_pattern(self.schema_search_text(path)))

    def run(self, files: PipelineFile | PipelineFileCollection) -> None:
        logger = self._get_logger()
        for pipeline_file in ensure_pipelinefilecollection(files):
            logger.info("checking that '%s' is valid", pipeline_file.src_path)
            self.validate(pipeline_file.src_path)
            pipeline_file.check_result = CheckResult(self.compliant, self.compliance_log, self.errors)

    def check_file(self, path: str) -> CheckResult:
        """Validate one CSV file and return the result (``validate`` plus packing the state into a result)."""
        self.validate(path)
        return CheckResult(self.compliant, self.compliance_log, self.errors)

    def validate(self, path: str) -> None:
        """Validate one CSV file against its schema; the outcome is left in ``compliant``, ``compliance_log`` and
        ``errors``."""
        import tableschema
        import tabulator
        import yaml

        from aodncore.table import get_tableschema_descriptor

        self.compliance_log, self.compliant, self.errors = [], True, False
        search = self.schema_search_text(path)
        schema_file = find_file(self.schema_base_path, self.schema_pattern(search))
        self._get_logger().log(SYSINFO, "schema file: %s", schema_file)
        if schema_file is None:
            self.compliance_log = (f"could not find schema definition matching '{search}'",)
            self.compliant, self.errors = False, True
            return

        with open(schema_file) as f:
            definition = yaml.safe_load(f)
        descriptor = get_tableschema_descriptor(definition, "schema")

        row_errors: list[str] = []

        def collect(exc, row_number=None, row_data=None, error_data=None):
            row_errors.append(f"Exception: {exc}\nError Data: {_format_error_data(error_data)}\n")

        try:
            for _row in tableschema.Table(path, schema=descriptor).iter(exc_handler=collect):
                pass
        except (tableschema.exceptions.TableSchemaException, tabulator.exceptions.TabulatorException,
                UnicodeDecodeError) as e:
            # an unreadable CSV is a data error of this file (the classic runner let it escape the step)
            row_errors.append(f"Exception: {type(e).__name__}: {e}\nError Data: \n")
        if row_errors:
            self.compliant = False
            listed = row_errors[:TABLE_SCHEMA_MAX_LISTED_ERRORS]
            if len(row_errors) > TABLE_SCHEMA_MAX_LISTED_ERRORS:
                listed.append(f"(Listing first {TABLE_SCHEMA_MAX_LISTED_ERRORS} errors out of {len(row_errors)})")
            self.compliance_log = listed

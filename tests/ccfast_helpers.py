"""Helpers for the fast-path identity tests: run compliance-checker plainly or fast and compare what it found."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Sequence
from typing import Any

from compliance_checker.runner import CheckSuite, ComplianceChecker

from aodncore.checks import ccfast

LIMITS = {"lenient": 3, "normal": 2, "strict": 1}


def result_tree(result: Any) -> dict:
    """Everything a report can show of a ``Result``: name, weight, score, messages, variable, children."""
    return {
        "name": result.name,
        "weight": result.weight,
        "value": result.value,
        "msgs": list(result.msgs),
        "variable_name": result.variable_name,
        "children": [result_tree(child) for child in result.children],
    }


def serialise(score_groups: dict) -> dict:
    """``run_all`` output as plain data: per suite, the result trees and the checks that raised (type, text)."""
    return {
        suite: ([result_tree(group) for group in groups],
                {check: (type(exc).__name__, str(exc)) for check, (exc, _tb) in errors.items()})
        for suite, (groups, errors) in score_groups.items()
    }


def _run(run, path: str, suites: Sequence[str], skip_checks, include_checks) -> tuple[Any, Any]:
    """(raw score groups or None, serialised outcome) of one run; an exception of ``run_all`` is an outcome too."""
    suite = CheckSuite()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = suite.load_dataset(path)
        try:
            groups = run(suite, ds, list(suites), include_checks, skip_checks)
        except Exception as e:
            return None, {"raised": (type(e).__name__, str(e))}
        finally:
            ds.close()
    return groups, serialise(groups)


def plain_run_all(path: str, suites: Sequence[str], skip_checks=None, include_checks=None) -> tuple[Any, Any]:
    """compliance-checker's own ``load_dataset`` + ``run_all``."""
    return _run(lambda suite, ds, names, inc, skip: suite.run_all(ds, names, inc, skip),
                path, suites, skip_checks, include_checks)


def fast_run_all(path: str, suites: Sequence[str], skip_checks=None, include_checks=None) -> tuple[Any, Any]:
    """The same inside the fast path's run scope."""
    return _run(lambda suite, ds, names, inc, skip: ccfast.run_all(suite, ds, names, inc, skip),
                path, suites, skip_checks, include_checks)


def rendered_reports(path: str, score_groups: dict | None, criteria: str) -> dict:
    """The verdict, text report and JSON report compliance-checker writes for these results (no timestamps)."""
    if score_groups is None:
        return {}
    suite = CheckSuite()
    limit = LIMITS[criteria]
    score_dict = {path: score_groups}
    text, json_text = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(text):
        ComplianceChecker.stdout_output(suite, score_dict, 0, limit)
    with contextlib.redirect_stdout(json_text):
        ComplianceChecker.json_output(suite, score_dict, "-", path, limit, "json")
    report = json.loads(json_text.getvalue())
    for entry in report.values():
        entry.pop("report_timestamp", None)
    return {
        "passed": all(suite.passtree(groups, limit) for groups, _errors in score_groups.values()),
        "text": [line for line in text.getvalue().splitlines() if "Report generated" not in line],
        "json": report,
    }


def comparable(result: Any) -> tuple:
    """A ``CheckResult`` without the report timestamps."""
    return (bool(result.compliant), result.errors,
            [line for line in result.log if "Report generated" not in line and "report_timestamp" not in line])

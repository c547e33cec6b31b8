"""What every ``aodncore`` command shares: exit codes, the consoles, and one-line usage errors."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = [
    "EXIT_CODES_HELP", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE",
    "UsageError", "configuration_errors", "console", "fail_usage", "out",
]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
EXIT_CODES_HELP = (
    "Exit codes: 0 every file published (or already ingested); 1 some file was quarantined or failed; "
    "2 usage or configuration error."
)

console = Console(stderr=True)
out = Console()


class UsageError(Exception):
    """A configuration or usage problem reported in one line with exit code 2."""


def configuration_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a command reports as a usage or configuration error (one line, exit code 2)."""
    import jsonschema

    from aodncore.ingest.report import ReportPathError
    from aodncore.pipeline.exceptions import (
        InvalidCheckSuiteError,
        InvalidConfigError,
        InvalidHandlerError,
        InvalidStoreUrlError,
        MissingConfigFileError,
    )
    from aodncore.prefect.credentials import SecretInParameterError
    from aodncore.prefect.daskrun import DaskConfigurationError

    return (
        UsageError,
        ReportPathError,
        DaskConfigurationError,
        SecretInParameterError,
        InvalidCheckSuiteError,
        InvalidConfigError,
        InvalidHandlerError,
        InvalidStoreUrlError,
        MissingConfigFileError,
        jsonschema.exceptions.ValidationError,
        FileNotFoundError,
    )


_SECRET_WORDS = ("pass", "secret", "token", "key", "credential")


def _usage_message(error: BaseException) -> str:
    """One line describing ``error``; a schema error about a secret-looking setting does not echo its value."""
    path = [str(part) for part in getattr(error, "absolute_path", ())]
    if path and any(word in part.lower() for part in path for word in _SECRET_WORDS):
        return f"invalid value for '{'/'.join(path)}' (fails '{getattr(error, 'validator', '?')}'; value not shown)"
    message = getattr(error, "message", None) or str(error)
    if path:
        message = f"{'/'.join(path)}: {message}"
    return " ".join(message.split())


def fail_usage(error: BaseException) -> typer.Exit:
    """Print ``error`` as one red line and return the exit (code 2) to raise."""
    from rich.markup import escape

    message = _usage_message(error)
    console.print(f"[red]error:[/red] {escape(f'{type(error).__name__}: {message}')}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)

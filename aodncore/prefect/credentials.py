"""Credentials for the flows, never stored in Prefect.

Prefect stores every flow-run parameter in plain text (API, database, UI). So:

* :func:`refuse_secrets_in_parameters` refuses a parameter that carries a secret — a password in a URI
  (``sftp://bob:PW@host/path``), a secret-looking query argument, or a secret-looking key in ``handler_params`` —
  *before* the flow run is created, with an error saying where the secret belongs instead;
* :func:`run_credentials` gives a run its credentials from places that are not parameters: Prefect blocks named
  by parameters (a ``prefect-aws`` ``AwsCredentials`` or ``S3Bucket`` block; ``Secret`` blocks holding the SFTP
  and SMTP passwords), on top of the standard AWS chain (environment, profile, instance role), the
  ``AODNCORE_SFTP_PASSWORD`` variable and the pipeline config file (``mail.smtp_pass``).

Credentials from blocks are put in this process's environment for the duration of the run only (worker processes
started for the run inherit them) and never logged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["SECRET_WORDS", "RunCredentials", "SecretInParameterError", "refuse_secrets_in_parameters",
           "run_credentials"]

SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "smtp_pass", "api_key", "access_key")
"""Parameter keys (or URI query arguments) containing one of these are treated as secrets."""

_ALTERNATIVES = (
    "flow-run parameters are stored in plain text by Prefect. Give credentials through a Prefect block instead "
    "(aws_credentials_block='<AwsCredentials or S3Bucket block>', sftp_password_secret='<Secret block>', "
    "smtp_password_secret='<Secret block>'), the standard AWS chain (environment, profile, instance role), "
    "AODNCORE_SFTP_PASSWORD, or the pipeline config file (mail.smtp_pass)"
)


class SecretInParameterError(ValueError):
    """A flow parameter carries a secret; the message names the parameter (not the secret) and the alternatives."""


def _is_secret_word(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _uri_secret(value: str) -> str | None:
    """Why ``value`` (a URI) carries a secret, or None."""
    if "://" not in value:
        return None
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return None
    if password:
        return "a password in the URI"
    if any(_is_secret_word(key) and val for key, val in parse_qsl(parts.query)):
        return "a secret in the URI's query"
    return None


def _find_secret(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        reason = _uri_secret(value)
        return (path, reason) if reason else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_secret_word(str(key)) and isinstance(item, str) and item:
                return f"{path}.{key}", "a secret-looking setting"
            found = _find_secret(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_secret(item, f"{path}[{index}]")
            if found:
                return found
    return None


def refuse_secrets_in_parameters(parameters: Mapping[str, Any]) -> None:
    """Raise :class:`SecretInParameterError` if any parameter carries a secret (see the module docstring)."""
    for name, value in parameters.items():
        found = _find_secret(value, name)
        if found:
            where, reason = found
            raise SecretInParameterError(f"parameter '{where}' holds {reason}: {_ALTERNATIVES}")


@dataclass
class RunCredentials:
    """What :func:`run_credentials` provided: environment variables set for the run and config overrides."""

    environment: list[str] = field(default_factory=list)  # names only, never values
    smtp_password: str | None = None


def _load_block(name: str) -> Any:
    """An ``AwsCredentials`` (or the credentials of an ``S3Bucket``) block: ``name``, ``aws-credentials/name`` or
    ``s3-bucket/name``."""
    from prefect.blocks.core import Block

    try:
        import prefect_aws  # noqa: F401 - registers the block types
    except ImportError as error:
        raise ImportError("aws_credentials_block needs prefect-aws: pip install 'aodncore[aws]'") from error
    block = Block.load(name if "/" in name else f"aws-credentials/{name}")
    return getattr(block, "credentials", block)  # an S3Bucket block carries its AwsCredentials


def _aws_environment(credentials: Any) -> dict[str, str]:
    def secret(value: Any) -> str | None:
        if value is None:
            return None
        getter = getattr(value, "get_secret_value", None)
        return getter() if callable(getter) else str(value)

    env = {
        "AWS_ACCESS_KEY_ID": credentials.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret(credentials.aws_secret_access_key),
        "AWS_SESSION_TOKEN": credentials.aws_session_token,
        "AWS_DEFAULT_REGION": credentials.region_name,
        "AWS_PROFILE": credentials.profile_name,
    }
    client_parameters = getattr(credentials, "aws_client_parameters", None)
    endpoint = getattr(client_parameters, "endpoint_url", None)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = str(endpoint)
    return {key: value for key, value in env.items() if value}


def _secret_value(name: str) -> str:
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())


@contextlib.contextmanager
def run_credentials(aws_credentials_block: str | None = None, sftp_password_secret: str | None = None,
                    smtp_password_secret: str | None = None) -> Iterator[RunCredentials]:
    """Within the block, the run's credentials from the named Prefect blocks (none named: nothing changes)."""
    env: dict[str, str] = {}
    provided = RunCredentials()
    if aws_credentials_block:
        env.update(_aws_environment(_load_block(aws_credentials_block)))
    if sftp_password_secret:
        from aodncore.pipeline.storage import SFTP_PASSWORD_ENV

        env[SFTP_PASSWORD_ENV] = _secret_value(sftp_password_secret)
    if smtp_password_secret:
        provided.smtp_password = _secret_value(smtp_password_secret)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    provided.environment = sorted(env)
    try:
        yield provided
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

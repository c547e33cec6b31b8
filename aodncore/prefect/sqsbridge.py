"""``aodncore bridge-sqs``: run :func:`~aodncore.prefect.triggers.bridge_sqs_queue` as a service.

Before the loop starts, the queue URL, the queue itself and the Prefect server are checked, so a mistake is one
clear line: :class:`BridgeConfigurationError` (a bad URL, no such queue, no access, no Prefect server configured)
or :class:`BridgeUnavailableError` (the queue's endpoint or the Prefect server cannot be reached — maybe an
outage, so a supervisor should restart the bridge). The loop keeps the at-least-once rule of
``bridge_sqs_queue``: a message is deleted only after the Prefect server accepted its events, so stopping at any
moment (Ctrl-C, SIGTERM) loses nothing; at worst a message is delivered again and its duplicate event is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

__all__ = ["BridgeConfigurationError", "BridgeUnavailableError", "check_queue_url", "run_bridge"]

logger = logging.getLogger(__name__)

#: ``sqs.<region>.amazonaws.com`` (and the legacy ``<region>.queue.amazonaws.com``)
_AWS_HOST = re.compile(r"^(?:sqs\.(?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$")
_MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}


class BridgeConfigurationError(ValueError):
    """The bridge cannot work as configured (fix the command line or the environment)."""


class BridgeUnavailableError(RuntimeError):
    """The queue or the Prefect server cannot be reached now; messages stay on the queue."""


def check_queue_url(queue_url: str) -> str | None:
    """Validate an SQS queue URL (``https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE``, or any http(s) endpoint of
    an SQS-compatible service with ``/ACCOUNT/QUEUE``); return the AWS region it names, if any."""
    url = urlparse(queue_url)
    parts = [part for part in url.path.split("/") if part]
    if url.scheme not in ("http", "https") or not url.hostname or len(parts) != 2:
        raise BridgeConfigurationError(
            f"'{queue_url}' is not an SQS queue URL (expected https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)")
    match = _AWS_HOST.match(url.hostname)
    return (match.group("a") or match.group("b")) if match else None


def _sqs_client(region: str | None) -> Any:
    import boto3

    session = boto3.session.Session()
    return session.client("sqs", region_name=session.region_name or region or None)


def _error_code(error: BaseException) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def _describe(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _check_queue(client: Any, queue_url: str) -> None:
    import botocore.exceptions

    try:
        client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    except botocore.exceptions.ClientError as error:
        code = _error_code(error)
        if code in _MISSING_QUEUE_CODES:
            raise BridgeConfigurationError(f"queue {queue_url} does not exist") from None
        raise BridgeConfigurationError(f"queue {queue_url} cannot be used: {_describe(error)}") from None
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.NoRegionError) as error:
        raise BridgeConfigurationError(f"queue {queue_url}: {_describe(error)}") from None
    except (botocore.exceptions.BotoCoreError, ConnectionError, TimeoutError) as error:
        raise BridgeUnavailableError(f"cannot reach queue {queue_url}: {_describe(error)}") from None


def _check_prefect_server() -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise BridgeConfigurationError(
            "bridge-sqs forwards events to a Prefect server: set PREFECT_API_URL to the API of the server that "
            "runs the deployments (aodncore serve)")
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise BridgeUnavailableError(f"cannot reach the Prefect server at {api_url}: {_describe(problem)}")
    return api_url


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) stops the bridge like Ctrl-C."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bridge(queue_url: str, *, wait_seconds: int = 20, max_batches: int | None = None) -> int:
    """Check the queue and the Prefect server, then forward the queue's S3 notifications until stopped (Ctrl-C,
    SIGTERM) or ``max_batches`` receive calls were made; return the number of objects forwarded.

    :raises BridgeConfigurationError: see the module docstring
    :raises BridgeUnavailableError: the queue or the server cannot be reached (at start or later)
    """
    import botocore.exceptions
    import httpx

    from aodncore.prefect.triggers import bridge_sqs_queue

    region = check_queue_url(queue_url)
    try:
        client = _sqs_client(region)
    except botocore.exceptions.BotoCoreError as error:
        raise BridgeConfigurationError(_describe(error)) from None
    _check_queue(client, queue_url)
    api_url = _check_prefect_server()
    logger.info("forwarding S3 notifications from %s to the Prefect server at %s", queue_url, api_url)
    try:
        with _sigterm_as_interrupt():
            return bridge_sqs_queue(queue_url, sqs_client=client, wait_seconds=wait_seconds, max_batches=max_batches)
    except (botocore.exceptions.BotoCoreError, ConnectionError, TimeoutError) as error:
        raise BridgeUnavailableError(f"queue {queue_url}: {_describe(error)}; messages stay on the queue") from None
    except botocore.exceptions.ClientError as error:
        raise BridgeUnavailableError(f"queue {queue_url}: {_describe(error)}; messages stay on the queue") from None
    except httpx.HTTPError as error:
        raise BridgeUnavailableError(
            f"the Prefect server at {api_url} did not accept the events: {_describe(error)}; messages stay on the "
            "queue") from None

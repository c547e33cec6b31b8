"""Small helpers for S3 (and S3-compatible) object storage built on boto3.

A default S3 *client* is created lazily on first use, so no set-up call is required; :func:`set_s3` replaces it
(credentials, endpoint). boto3 clients are thread-safe and the default client is shared by all threads; boto3
resources are not, so :func:`get_s3_resource` (and the legacy module attribute ``s3``) hands out one resource per
thread. The endpoint defaults to boto3's own resolution, which honours ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3``.

Transient failures (connection problems, throttling, 5xx answers) are retried with tenacity. Credentials are never
written to log lines or exception messages.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions
import botocore.session
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

__all__ = [
    "DEFAULT_PART_SIZE",
    "compute_etag",
    "copy_object",
    "delete_object",
    "download_object",
    "file_matches_etag",
    "get_etag",
    "get_s3_bucket",
    "get_s3_client",
    "get_s3_key",
    "get_s3_resource",
    "head_object",
    "is_s3",
    "is_transient_error",
    "list_1000_objects",
    "list_objects",
    "move_object",
    "set_s3",
    "upload_file",
]

LOGGER = logging.getLogger(__name__)

#: boto3's default multipart threshold and chunk size (bytes), which decides the ETag of uploaded objects
DEFAULT_PART_SIZE = 8 * 1024 * 1024

#: number of attempts (first try included) for an S3 call failing with a transient error
RETRY_ATTEMPTS = 4

TRANSIENT_ERROR_CODES = frozenset({
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "500",
    "502",
    "503",
    "504",
})

_STS_KEYS = {"AccessKeyId": "aws_access_key_id", "SecretAccessKey": "aws_secret_access_key",
             "SessionToken": "aws_session_token"}
_BOTO_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

_ENV_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION")

_lock = threading.Lock()
_client: Any = None
_client_env: tuple | None = None
_explicit = False
_client_kwargs: dict[str, Any] = {}
_generation = 0
_local = threading.local()
_loader: Any = None


def is_transient_error(exc: BaseException) -> bool:
    """Tell whether an exception raised by an S3 call is worth retrying (network trouble, throttling, 5xx)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_ERROR_CODES or int(status) >= 500
    return isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
                            http.client.IncompleteRead, ssl.SSLError, ConnectionError))


def _log_retry(retry_state) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    LOGGER.warning("transient S3 error (attempt %d), retrying: %s: %s", retry_state.attempt_number,
                   type(exc).__name__, exc)


s3_retry = retry(
    retry=retry_if_exception(is_transient_error),
    stop=stop_after_attempt(RETRY_ATTEMPTS),
    wait=wait_exponential(multiplier=0.5, max=8),
    before_sleep=_log_retry,
    reraise=True,
)


def _normalise_credentials(credentials: Any) -> dict[str, str]:
    """Turn an STS-style dict, a boto3-style dict or a botocore credentials object into client keyword arguments."""
    if credentials is None:
        return {}
    if not isinstance(credentials, Mapping):
        # botocore Credentials / ReadOnlyCredentials and similar objects
        if hasattr(credentials, "access_key"):
            result = {"aws_access_key_id": credentials.access_key,
                      "aws_secret_access_key": getattr(credentials, "secret_key", None),
                      "aws_session_token": getattr(credentials, "token", None)}
            return {k: v for k, v in result.items() if v}
        raise TypeError(f"unsupported credentials type '{type(credentials).__name__}'")

    result: dict[str, str] = {}
    for sts_key, boto_key in _STS_KEYS.items():
        if credentials.get(sts_key):
            result[boto_key] = credentials[sts_key]
    for boto_key in _BOTO_KEYS:
        if credentials.get(boto_key):
            result[boto_key] = credentials[boto_key]
    if not result:
        raise ValueError("credentials contain none of the keys AccessKeyId/SecretAccessKey/SessionToken or "
                         "aws_access_key_id/aws_secret_access_key/aws_session_token")
    if ("aws_access_key_id" in result) != ("aws_secret_access_key" in result):
        raise ValueError("credentials must contain both an access key id and a secret access key")
    return result


def _new_session():
    """A fresh boto3 session (sessions are not thread-safe; callers hold ``_lock``).

    The botocore data loader (parsed service models) is shared between sessions, which makes building a client
    several times cheaper; the sessions themselves share no credentials or configuration.
    """
    global _loader
    botocore_session = botocore.session.get_session()
    if _loader is None:
        _loader = botocore_session.get_component("data_loader")
    else:
        botocore_session.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=botocore_session)


def _new_client(client_kwargs: Mapping[str, Any]):
    return _new_session().client("s3", **client_kwargs)


def set_s3(credentials: Any = None, endpoint_url: str | None = None, config: Any = None):
    """(Re)configure the default S3 client and return it.

    :param credentials: None (boto3's default chain), an STS ``Credentials`` dict (``AccessKeyId``,
        ``SecretAccessKey``, ``SessionToken``), a dict of ``aws_access_key_id``-style keys, or a botocore
        credentials object. Every given part is passed to boto3.
    :param endpoint_url: URL of an S3-compatible endpoint; None lets boto3 resolve it (``AWS_ENDPOINT_URL``...)
    :param config: optional ``botocore.config.Config`` (timeouts, boto3's own retry policy...)
    """
    global _client, _client_kwargs, _client_env, _explicit, _generation
    kwargs = _normalise_credentials(credentials)
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if config is not None:
        kwargs["config"] = config
    with _lock:
        _client = _new_client(kwargs)
        _client_kwargs = kwargs
        _client_env = _env_signature()
        _explicit = bool(kwargs)
        _generation += 1
        return _client


def _env_signature() -> tuple:
    return tuple(os.environ.get(name) for name in _ENV_VARS)


def get_s3_client():
    """Return the shared (thread-safe) default S3 client, creating it on first use.

    Unless :func:`set_s3` was given explicit settings, the client is rebuilt when the AWS environment variables
    it was built from change (e.g. ``AWS_ENDPOINT_URL``).
    """
    global _client, _client_env, _generation
    client = _client
    if client is not None and (_explicit or _client_env == _env_signature()):
        return client
    with _lock:
        env = _env_signature()
        if _client is None or (not _explicit and _client_env != env):
            _client = _new_client(_client_kwargs)
            _client_env = env
            _generation += 1
        return _client


def get_s3_resource():
    """Return a boto3 S3 *resource* for the calling thread, configured like the default client."""
    get_s3_client()  # refreshes the configuration generation if the environment changed
    cached = getattr(_local, "resource", None)
    if cached is not None and cached[0] == _generation:
        return cached[1]
    with _lock:
        resource = _new_session().resource("s3", **_client_kwargs)
        _local.resource = (_generation, resource)
    return resource


def __getattr__(name: str):
    # legacy module global ``s3`` (a resource in the classic library), now created on demand per thread
    if name == "s3":
        return get_s3_resource()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------------------
# URL helpers
# --------------------------------------------------------------------------------------------------------------

def is_s3(url: str) -> bool:
    """True if ``url`` uses the ``s3://`` scheme."""
    return urlparse(url).scheme == "s3"


def _split_s3_url(url: str) -> tuple[str, str]:
    # not urlparse: '#' and '?' are legal in object keys and must not be taken as fragment or query
    rest = url.split("://", 1)[1] if "://" in url else url
    bucket, _, key = rest.partition("/")
    return bucket, key


def get_s3_bucket(url: str) -> str:
    """Bucket name of an ``s3://bucket/key`` URL."""
    return _split_s3_url(url)[0]


def get_s3_key(url: str) -> str:
    """Key of an ``s3://bucket/key`` URL, without leading or trailing slashes (``#`` and ``?`` are key text)."""
    return _split_s3_url(url)[1].strip("/")


# --------------------------------------------------------------------------------------------------------------
# object operations
# --------------------------------------------------------------------------------------------------------------

def list_objects(bucket: str, prefix: str = "") -> Iterator[dict]:
    """Yield the listing entries (dicts with ``Key``, ``Size``, ``LastModified``, ``ETag``...) of every object
    under ``prefix``, following pagination past 1000 keys."""
    client = get_s3_client()
    token = None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = _list_page(client, kwargs)
        yield from page.get("Contents", [])
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
        if not token:
            return


@s3_retry
def _list_page(client, kwargs: dict) -> dict:
    return client.list_objects_v2(**kwargs)


def list_1000_objects(bucket: str, prefix: str) -> list[dict] | None:
    """Compatibility helper: the first page (at most 1000 entries) of a listing, or None when it is empty.
    Prefer :func:`list_objects`."""
    page = _list_page(get_s3_client(), {"Bucket": bucket, "Prefix": prefix})
    return page.get("Contents") or None


@s3_retry
def head_object(bucket: str, key: str, **kwargs) -> dict:
    """``HeadObject`` on ``bucket``/``key`` (extra keyword arguments such as ``PartNumber`` are passed on)."""
    return get_s3_client().head_object(Bucket=bucket, Key=key, **kwargs)


def get_etag(bucket: str, key: str) -> str:
    """The object's ETag without surrounding quotes."""
    return head_object(bucket, key)["ETag"].strip('"')


def compute_etag(path: str | os.PathLike, part_size: int = DEFAULT_PART_SIZE) -> str:
    """The ETag S3 gives a file uploaded with parts of ``part_size`` bytes (no SSE-KMS/SSE-C).

    A file of at most one part gets the hex MD5 of its bytes; a multipart one the MD5 of the concatenated binary
    part digests followed by ``-<number of parts>``.
    """
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    digests = []
    with open(path, "rb") as f:
        while chunk := f.read(part_size):
            digests.append(hashlib.md5(chunk).digest())
    if not digests:
        return hashlib.md5(b"").hexdigest()
    if len(digests) == 1:
        return digests[0].hex()
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def file_matches_etag(path: str | os.PathLike, etag: str, bucket: str | None = None, key: str | None = None,
                      part_size: int | None = None) -> bool:
    """Tell whether a local file has the content of an object with the given ETag.

    For multipart ETags the part size is taken from ``part_size``, else from the object's first part (needs
    ``bucket`` and ``key``), else boto3's default.
    """
    etag = etag.strip('"')
    if "-" not in etag:
        return compute_etag(path, part_size=max(os.path.getsize(path), 1)) == etag
    if part_size is None and bucket and key:
        part_size = head_object(bucket, key, PartNumber=1)["ContentLength"]
    return compute_etag(path, part_size=part_size or DEFAULT_PART_SIZE) == etag


@s3_retry
def upload_file(path: str | os.PathLike, bucket: str, key: str, content_type: str | None = None,
                extra_args: Mapping[str, Any] | None = None) -> None:
    """Upload a local file (managed transfer, multipart above 8 MiB)."""
    args = dict(extra_args or {})
    if content_type:
        args["ContentType"] = content_type
    get_s3_client().upload_file(os.fspath(path), bucket, key, ExtraArgs=args or None)


@s3_retry
def download_object(bucket: str, key: str, destination: str | os.PathLike) -> None:
    """Download an object to the local path ``destination`` (parent directories are created)."""
    destination = os.fspath(destination)
    parent = os.path.dirname(destination)
    if parent:
        os.makedirs(parent, exist_ok=True)
    get_s3_client().download_file(bucket, key, destination)


@s3_retry
def copy_object(key: str, source_bucket: str, dest_bucket: str, dest_key: str | None = None) -> None:
    """Server-side managed copy of ``source_bucket/key`` to ``dest_bucket/dest_key`` (default: same key)."""
    get_s3_client().copy({"Bucket": source_bucket, "Key": key}, dest_bucket, dest_key or key)


@s3_retry
def delete_object(bucket: str, key: str) -> None:
    """Delete one object (a missing object is not an error in S3)."""
    get_s3_client().delete_object(Bucket=bucket, Key=key)


def move_object(key: str, source_bucket: str, dest_bucket: str, dest_key: str | None = None) -> bool:
    """Copy an object to ``dest_bucket`` (same key unless ``dest_key``) and then delete the source.

    The source is only deleted once the copy exists; returns True.
    """
    target_key = dest_key or key
    copy_object(key, source_bucket, dest_bucket, target_key)
    head_object(dest_bucket, target_key)
    if (source_bucket, key) != (dest_bucket, target_key):
        delete_object(source_bucket, key)
    return True

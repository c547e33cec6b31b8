"""Storage brokers: upload, delete, query and download pipeline files in a local directory, S3 or SFTP store.

:func:`get_storage_broker` picks the broker from a store URL (``file://``, ``s3://``, ``sftp://``). Every broker
works on destination paths relative to its ``prefix``; query results are prefix-relative too, so a result's
``dest_path`` can be handed straight back to :meth:`BaseStorageBroker.download` or
:meth:`BaseStorageBroker.delete`.

This package is the public home of every name; the code lives in ``base`` (:class:`BaseStorageBroker`), ``local``
(:class:`LocalFileStorageBroker`), ``s3`` (:class:`S3StorageBroker`) and ``sftp`` (:class:`SftpStorageBroker` and
the ``sftp_*`` helpers). Classes report ``aodncore.pipeline.storage`` as their module.

Patch points (module globals of this package, looked up at call time by the brokers): ``boto3``, ``mkdir_p``,
``safe_copy_file``, ``rm_f``, ``open`` (``mock.patch(..., create=True)``; the builtin otherwise), and paramiko's
``SSHClient`` and ``AutoAddPolicy`` (bound on first use).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import boto3  # noqa: F401  (patch point: the S3 broker creates its client through ``storage.boto3``)

from aodncore.pipeline.exceptions import InvalidStoreUrlError
from aodncore.util.fileops import mkdir_p, rm_f, safe_copy_file  # noqa: F401  (patch points of the local broker)
from aodncore.util.misc import Validator, validate_type

from .base import DISALLOWED_DELETE_REGEXES, LOGGER, BaseStorageBroker
from .local import LocalFileStorageBroker
from .s3 import S3StorageBroker
from .sftp import (
    SFTP_ACCEPT_UNKNOWN_HOSTS_ENV,
    SFTP_KEY_FILE_ENV,
    SFTP_KNOWN_HOSTS_ENV,
    SFTP_PASSWORD_ENV,
    SFTP_PORT_ENV,
    SFTP_UPLOAD_TEMP_PREFIX,
    SFTP_USERNAME_ENV,
    SftpStorageBroker,
    paramiko_global,
    sftp_makedirs,
    sftp_mkdir_p,
    sftp_path_exists,
)

__all__ = [
    "get_storage_broker",
    "LocalFileStorageBroker",
    "S3StorageBroker",
    "SftpStorageBroker",
    "sftp_makedirs",
    "sftp_mkdir_p",
    "sftp_path_exists",
    "validate_storage_broker",
]

_REEXPORTED = (DISALLOWED_DELETE_REGEXES, LOGGER, SFTP_ACCEPT_UNKNOWN_HOSTS_ENV, SFTP_KEY_FILE_ENV,
               SFTP_KNOWN_HOSTS_ENV, SFTP_PASSWORD_ENV, SFTP_PORT_ENV, SFTP_UPLOAD_TEMP_PREFIX, SFTP_USERNAME_ENV)

#: paramiko names bound as module globals on first use (patch targets of client test suites)
_PARAMIKO_GLOBALS = ("SSHClient", "AutoAddPolicy")


def __getattr__(name: str) -> Any:
    if name in _PARAMIKO_GLOBALS:
        return paramiko_global(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_storage_broker(store_url: str) -> BaseStorageBroker:
    """Return the storage broker for a store URL.

    ``file:///abs/path`` → :class:`LocalFileStorageBroker`, ``s3://bucket/prefix`` → :class:`S3StorageBroker`,
    ``sftp://[user@]host[:port]/path`` → :class:`SftpStorageBroker`.
    """
    url = urlparse(store_url)
    if url.scheme == "file":
        if url.netloc or not os.path.isabs(url.path):
            raise InvalidStoreUrlError(f"invalid URL '{store_url}'. Must be an absolute path")
        return LocalFileStorageBroker(url.path)
    if url.scheme == "s3":
        return S3StorageBroker(bucket=url.netloc, prefix=url.path)
    if url.scheme == "sftp":
        kwargs: dict[str, Any] = {}
        if url.port:
            kwargs["port"] = url.port
        if url.username:
            kwargs["username"] = url.username
        return SftpStorageBroker(url.hostname, url.path, **kwargs)
    raise InvalidStoreUrlError(f"invalid URL scheme '{url.scheme}'")


validate_storage_broker: Validator = validate_type(BaseStorageBroker)

for _public in (BaseStorageBroker, LocalFileStorageBroker, S3StorageBroker, SftpStorageBroker, sftp_makedirs,
                sftp_mkdir_p, sftp_path_exists):
    _public.__module__ = __name__
del _public

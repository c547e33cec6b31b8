"""Storage brokers: upload, delete, query and download pipeline files in a local directory, S3 or SFTP store.

:func:`get_storage_broker` picks the broker from a store URL (``file://``, ``s3://``, ``sftp://``). Every broker
works on destination paths relative to its ``prefix``; query results are prefix-relative too, so a result's
``dest_path`` can be handed straight back to :meth:`BaseStorageBroker.download` or
:meth:`BaseStorageBroker.delete`.
"""

from __future__ import annotations

import abc
import errno
import http.client
import logging
import os
import posixpath
import ssl
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from aodncore.pipeline.exceptions import AttributeNotSetError, InvalidStoreUrlError, StorageBrokerError
from aodncore.pipeline.files import (
    PipelineFileCollection,
    RemotePipelineFile,
    RemotePipelineFileCollection,
    ensure_pipelinefilecollection,
    ensure_remotepipelinefilecollection,
)
from aodncore.util.fileops import mkdir_p, rm_f, safe_copy_file
from aodncore.util.misc import Validator, ensure_regex_list, format_exception, validate_relative_path, validate_type
from aodncore.util.s3_util import is_transient_error

if TYPE_CHECKING:
    from aodncore.pipeline.files import PipelineFile

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

LOGGER = logging.getLogger(__name__)

#: regex patterns that would match every object and are refused by ``delete_regexes`` unless explicitly allowed
DISALLOWED_DELETE_REGEXES = {"", ".*", ".+"}

#: environment variable opting in to accepting SFTP host keys that are not in any known_hosts file
SFTP_ACCEPT_UNKNOWN_HOSTS_ENV = "AODNCORE_SFTP_ACCEPT_UNKNOWN_HOSTS"
SFTP_KNOWN_HOSTS_ENV = "AODNCORE_SFTP_KNOWN_HOSTS"
SFTP_KEY_FILE_ENV = "AODNCORE_SFTP_KEY_FILE"
SFTP_USERNAME_ENV = "AODNCORE_SFTP_USERNAME"
SFTP_PORT_ENV = "AODNCORE_SFTP_PORT"
SFTP_PASSWORD_ENV = "AODNCORE_SFTP_PASSWORD"  # e.g. set by the Prefect flows from a Secret block

_TRUE_STRINGS = {"1", "true", "yes", "on"}


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


def _safe_local_target(local_root: str, dest_path: str) -> str:
    """Join ``dest_path`` below ``local_root``, refusing paths that would land outside it."""
    root = os.path.abspath(local_root)
    target = os.path.abspath(os.path.join(root, dest_path))
    if os.path.commonpath([root, target]) != root or target == root:
        raise ValueError(f"destination path '{dest_path}' escapes the download directory")
    return target


@contextmanager
def _removed_on_error(path: str):
    """Remove the (partial) file at ``path`` if the block fails."""
    try:
        yield
    except BaseException:
        try:
            os.remove(path)
        except OSError:
            pass
        raise


class BaseStorageBroker(abc.ABC):
    """Common behaviour of the storage brokers; subclasses implement the underscore hooks."""

    def __init__(self) -> None:
        self.prefix: str = ""
        self.mode: int | None = None

    # ---- hooks -----------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        """Delete the stored object of one file."""

    @abc.abstractmethod
    def _post_run_hook(self):
        """Run after an upload/delete/download batch (also after a failure)."""

    @abc.abstractmethod
    def _pre_run_hook(self):
        """Run before an upload/delete/download batch (connect, validate the store...)."""

    @abc.abstractmethod
    def _run_query(self, query):
        """Return a RemotePipelineFileCollection of the objects whose prefix-relative path starts with query."""

    @abc.abstractmethod
    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        """Copy one stored object to ``remote_pipeline_file.local_path``."""

    @abc.abstractmethod
    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        """Copy one local file to the store."""

    @abc.abstractmethod
    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        """Tell whether ``abs_path`` already exists in the store."""

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _get_absolute_dest_path(self, pipeline_file, dest_path_attr: str) -> str:
        relative = getattr(pipeline_file, dest_path_attr)
        if relative:
            return os.path.join(self.prefix, relative)
        raise AttributeNotSetError(f"attribute '{dest_path_attr}' not set in '{pipeline_file}'")

    @staticmethod
    def _prepare_file_for_download(remote_pipeline_file, local_root: str) -> None:
        local_path = _safe_local_target(local_root, remote_pipeline_file.dest_path)
        remote_pipeline_file.local_path = local_path
        mkdir_p(os.path.dirname(local_path))

    # ---- public API ------------------------------------------------------------------------------------------

    def set_is_overwrite(self, pipeline_files: PipelineFile | PipelineFileCollection,
                         dest_path_attr: str = "dest_path") -> None:
        """Set ``is_overwrite`` on every file that will be stored, from whether its destination already exists."""
        stored_additions = (f for f in ensure_pipelinefilecollection(pipeline_files)
                            if f.should_store and not f.is_deletion)
        for addition in stored_additions:
            target = self._get_absolute_dest_path(addition, dest_path_attr)
            addition.is_overwrite = self._get_is_overwrite(addition, target)

    #: the stores need a destination for every file: a missing one raises ``AttributeNotSetError`` before the
    #: per-file hook runs (the test broker, which stores nothing, turns this off)
    _requires_dest_path = True

    def _error_target(self, pipeline_file, dest_path_attr: str) -> str:
        """How a failed file's destination is named in a ``StorageBrokerError`` (the absolute path)."""
        return self._get_absolute_dest_path(pipeline_file, dest_path_attr)

    def _run_batch(self, files, action, verb: str, is_stored_attr: str, dest_path_attr: str) -> None:
        self._pre_run_hook()
        try:
            for item in files:
                if self._requires_dest_path:
                    self._get_absolute_dest_path(item, dest_path_attr)
                try:
                    action(item, dest_path_attr)
                except Exception as e:
                    target = self._error_target(item, dest_path_attr)
                    raise StorageBrokerError(f"error {verb} '{target}': {format_exception(e)}") from e
                setattr(item, is_stored_attr, True)
        finally:
            self._post_run_hook()

    def upload(self, pipeline_files: PipelineFile | PipelineFileCollection, is_stored_attr: str = "is_stored",
               dest_path_attr: str = "dest_path") -> None:
        """Upload files to ``<prefix>/<dest_path_attr>``, setting ``is_stored_attr`` on each success."""
        files = ensure_pipelinefilecollection(pipeline_files)
        self._run_batch(files, self._upload_file, "uploading", is_stored_attr, dest_path_attr)

    def delete(self, pipeline_files: PipelineFile | PipelineFileCollection, is_stored_attr: str = "is_stored",
               dest_path_attr: str = "dest_path") -> None:
        """Delete the stored objects of files, setting ``is_stored_attr`` on each success."""
        files = ensure_pipelinefilecollection(pipeline_files)
        self._run_batch(files, self._delete_file, "deleting", is_stored_attr, dest_path_attr)

    def _download_one(self, remote_file, local_path: str) -> None:
        try:
            self._prepare_file_for_download(remote_file, local_path)
            self._download_file(remote_file)
        except Exception as e:
            raise StorageBrokerError(f"error downloading '{remote_file.dest_path}' to '{local_path}': "
                                     f"{format_exception(e)}") from e

    def download(self, remote_pipeline_files: RemotePipelineFile | RemotePipelineFileCollection,
                 local_path: str) -> None:
        """Download remote files below ``local_path``; each file's ``local_path`` becomes
        ``<local_path>/<dest_path>``."""
        files = ensure_remotepipelinefilecollection(remote_pipeline_files)
        self._pre_run_hook()
        try:
            for remote_file in files:
                self._download_one(remote_file, local_path)
        finally:
            self._post_run_hook()

    def download_iterator(self, remote_pipeline_files: RemotePipelineFile | RemotePipelineFileCollection,
                          local_path: str) -> Iterator[RemotePipelineFile]:
        """Download files one at a time, yielding each and removing its local copy when the consumer moves on."""
        files = ensure_remotepipelinefilecollection(remote_pipeline_files)
        self._pre_run_hook()
        try:
            for remote_file in files:
                self._download_one(remote_file, local_path)
                try:
                    yield remote_file
                finally:
                    remote_file.remove_local()
        finally:
            self._post_run_hook()

    def delete_regexes(self, regexes, allow_match_all: bool = False) -> PipelineFileCollection:
        """Delete every stored object whose prefix-relative path ``re.match``-es one of ``regexes``.

        Catch-all patterns (``''``, ``'.*'``, ``'.+'``) are refused unless ``allow_match_all``. Returns the
        collection of deletions performed.
        """
        compiled = ensure_regex_list(regexes)
        if not allow_match_all:
            bad = [r.pattern for r in compiled if r.pattern in DISALLOWED_DELETE_REGEXES]
            if bad:
                raise ValueError(f"refusing to delete with match-all regexes {bad}; "
                                 f"use allow_match_all=True to permit them")
        if not compiled:
            return PipelineFileCollection()
        remote_files = self.query()
        matching = RemotePipelineFileCollection(
            [f for f in remote_files if any(r.match(f.dest_path) for r in compiled)], validate_unique=False)
        deletions = PipelineFileCollection.from_remotepipelinefilecollection(matching, are_deletions=True)
        if deletions:
            self.delete(deletions)
        return deletions

    def query(self, query: str = "") -> RemotePipelineFileCollection:
        """List stored objects whose path relative to the prefix starts with ``query`` (S3-style key prefix)."""
        try:
            return self._run_query(query)
        except Exception as e:
            raise StorageBrokerError(f"error querying storage: {format_exception(e)}") from e


class LocalFileStorageBroker(BaseStorageBroker):
    """Store files below a local directory ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prefix='{self.prefix}')"

    def _pre_run_hook(self):
        pass

    def _post_run_hook(self):
        pass

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        rm_f(self._get_absolute_dest_path(pipeline_file, dest_path_attr))

    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        target = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        mkdir_p(os.path.dirname(target))
        safe_copy_file(pipeline_file.src_path, target, overwrite=True)
        if self.mode is not None:
            os.chmod(target, self.mode)

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        stored_copy = os.path.join(self.prefix, remote_pipeline_file.dest_path)
        safe_copy_file(stored_copy, remote_pipeline_file.local_path, overwrite=True)

    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        return os.path.exists(abs_path)

    def _run_query(self, query):
        validate_relative_path(query)
        path_prefix = os.path.join(self.prefix, query)
        search_root = os.path.dirname(path_prefix)
        results = RemotePipelineFileCollection()
        for dirpath, _dirnames, filenames in os.walk(search_root):
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                if not path.startswith(path_prefix) or os.path.islink(path) or not os.path.isfile(path):
                    continue
                st = os.stat(path)
                # distinct paths give distinct dest_paths: skip the collection's quadratic uniqueness scan
                results.add(RemotePipelineFile(dest_path=os.path.relpath(path, self.prefix), name=filename,
                                               last_modified=datetime.fromtimestamp(st.st_mtime),
                                               size=st.st_size), validate_unique=False)
        return results


class S3StorageBroker(BaseStorageBroker):
    """Store files in an S3 bucket below the key ``prefix``.

    The client comes from ``boto3.client('s3')``; an S3-compatible endpoint is selected with ``AWS_ENDPOINT_URL``.
    Transient failures are retried with tenacity following :attr:`retry_kwargs` (``tries`` attempts,
    ``delay`` seconds before the first retry multiplied by ``backoff`` each time). Client errors that are not
    transient (missing bucket, access denied...) fail at once.
    """

    retry_kwargs = {
        "tries": 3,
        "delay": 5,
        "backoff": 2,
        "exceptions": (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError,
                       http.client.IncompleteRead, ssl.SSLError),
    }

    def __init__(self, bucket: str, prefix: str) -> None:
        super().__init__()
        self.bucket = bucket
        self.prefix = (prefix or "").lstrip("/")
        self.s3_client = boto3.client("s3")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(bucket='{self.bucket}', prefix='{self.prefix}')"

    def _should_retry(self, exc: BaseException) -> bool:
        exceptions = tuple(self.retry_kwargs.get("exceptions", ()))
        if not isinstance(exc, exceptions):
            return False
        return not isinstance(exc, botocore.exceptions.ClientError) or is_transient_error(exc)

    def _retry(self, func, *args, **kwargs):
        retrying = Retrying(
            stop=stop_after_attempt(max(int(self.retry_kwargs.get("tries", 1)), 1)),
            wait=wait_exponential(multiplier=self.retry_kwargs.get("delay", 0),
                                  exp_base=self.retry_kwargs.get("backoff", 1)),
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        return retrying(func, *args, **kwargs)

    def _pre_run_hook(self):
        try:
            self._retry(self.s3_client.head_bucket, Bucket=self.bucket)
        except Exception as e:
            raise InvalidStoreUrlError(f"unable to access S3 bucket '{self.bucket}': {format_exception(e)}") from e

    def _post_run_hook(self):
        pass

    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        key = self._get_absolute_dest_path(pipeline_file, dest_path_attr)

        def upload():
            with open(pipeline_file.src_path, "rb") as f:
                self.s3_client.upload_fileobj(f, Bucket=self.bucket, Key=key,
                                              ExtraArgs={"ContentType": pipeline_file.mime_type})

        self._retry(upload)

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        key = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        self._retry(self.s3_client.delete_object, Bucket=self.bucket, Key=key)

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        key = os.path.join(self.prefix, remote_pipeline_file.dest_path)

        def download():
            with _removed_on_error(remote_pipeline_file.local_path), open(remote_pipeline_file.local_path, "wb") as f:
                self.s3_client.download_fileobj(Bucket=self.bucket, Key=key, Fileobj=f)

        self._retry(download)

    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        # S3 lists keys in lexicographic order, so an exact match is always on the first page
        result = self._retry(self.s3_client.list_objects_v2, Bucket=self.bucket, Prefix=abs_path)
        return any(obj.get("Key") == abs_path for obj in result.get("Contents", []))

    def _run_query(self, query):
        list_prefix = os.path.join(self.prefix, query) if self.prefix else query
        contents: list[dict] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": list_prefix}
        while True:
            result = self._retry(self.s3_client.list_objects_v2, **kwargs)
            contents.extend(result.get("Contents", []))
            token = result.get("NextContinuationToken")
            if result.get("IsTruncated") is not True or not token:
                break
            kwargs["ContinuationToken"] = token
        # every listed key starts with the prefix, so the relative paths are as distinct as the keys: the
        # collection's uniqueness scan (quadratic in the listing size) is skipped
        return _listing_to_collection(contents, self.prefix, validate_unique=False)

    @staticmethod
    def result_to_remote_pipelinefile_collection(result, prefix: str = "") -> RemotePipelineFileCollection:
        """Convert a ``list_objects_v2`` result into a collection; keys are made relative to ``prefix``."""
        return _listing_to_collection(result.get("Contents", []), prefix, validate_unique=True)


def _listing_to_collection(contents: list[dict], prefix: str, validate_unique: bool) -> RemotePipelineFileCollection:
    """Collection of the ``list_objects_v2`` entries ``contents``; keys are made relative to ``prefix``."""
    base = os.path.join(prefix, "") if prefix else ""
    collection = RemotePipelineFileCollection()
    for obj in contents:
        key = obj["Key"]
        dest_path = key[len(base):] if base and key.startswith(base) else key
        collection.add(RemotePipelineFile(dest_path=dest_path, name=posixpath.basename(key),
                                          last_modified=obj.get("LastModified"), size=obj.get("Size")),
                       validate_unique=validate_unique)
    return collection


# ------------------------------------------------------------------------------------------------------------------
# SFTP
# ------------------------------------------------------------------------------------------------------------------

def sftp_path_exists(sftp_client, path: str) -> bool:
    """True if ``path`` exists on the SFTP server (False for ENOENT; other I/O errors propagate)."""
    try:
        sftp_client.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    return True


def sftp_makedirs(sftp_client, name: str, mode: int = 0o755) -> None:
    """Create directory ``name`` and any missing parents on the SFTP server (like :func:`os.makedirs`)."""
    head, tail = posixpath.split(name)
    if not tail:
        head, tail = posixpath.split(head)
    if head and tail and not sftp_path_exists(sftp_client, head):
        try:
            sftp_makedirs(sftp_client, head, mode)
        except OSError as e:
            # a parent created meanwhile (or reported as existing) is fine
            if e.errno != errno.EEXIST and not sftp_path_exists(sftp_client, head):
                raise
        if tail == posixpath.curdir:
            return
    sftp_client.mkdir(name, mode)


def sftp_mkdir_p(sftp_client, name: str, mode: int = 0o755) -> None:
    """Like ``mkdir -p``: create ``name`` with its parents; an existing directory is not an error."""
    try:
        sftp_makedirs(sftp_client, name, mode)
    except OSError:
        if not sftp_path_exists(sftp_client, name):
            raise


#: paramiko names bound as module globals on first use (patch targets of client test suites)
_PARAMIKO_GLOBALS = ("SSHClient", "AutoAddPolicy")


def _paramiko_global(name: str) -> Any:
    """``SSHClient`` / ``AutoAddPolicy`` as currently bound on this module (importing paramiko on first use)."""
    value = globals().get(name)
    if value is None:
        import paramiko

        value = getattr(paramiko, name)
        globals()[name] = value
    return value


def __getattr__(name: str) -> Any:
    if name in _PARAMIKO_GLOBALS:
        return _paramiko_global(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _accept_unknown_host_policy() -> Any:
    """The opt-in policy for unknown host keys: ``AutoAddPolicy`` (keys kept in memory for this connection only,
    nothing written to known_hosts), logging each key it accepts."""
    auto_add = _paramiko_global("AutoAddPolicy")
    if not isinstance(auto_add, type):  # replaced by a test double: use it as given
        return auto_add()

    class LoggingAutoAddPolicy(auto_add):
        def missing_host_key(self, client, hostname, key):
            LOGGER.warning("accepting unknown SSH host key %s %s for '%s' (explicitly enabled)", key.get_name(),
                           key.fingerprint, hostname)
            # in memory only: AutoAddPolicy itself would also save the key into a loaded known_hosts file
            client.get_host_keys().add(hostname, key.get_name(), key)

    return LoggingAutoAddPolicy()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_STRINGS


class SftpStorageBroker(BaseStorageBroker):
    """Store files below ``prefix`` on an SFTP server (paramiko).

    Host keys are checked against the system and user ``known_hosts`` files (plus ``known_hosts``/
    ``$AODNCORE_SFTP_KNOWN_HOSTS``); an unknown host is refused unless ``accept_unknown_hosts=True`` or
    ``AODNCORE_SFTP_ACCEPT_UNKNOWN_HOSTS=1``. Authentication uses ``key_filename`` (or
    ``$AODNCORE_SFTP_KEY_FILE``), then the SSH agent and the default keys. The connection is opened lazily.
    """

    def __init__(self, server: str, prefix: str, port: int | None = None, username: str | None = None,
                 key_filename: str | None = None, known_hosts: str | None = None,
                 accept_unknown_hosts: bool | None = None, timeout: float = 30.0) -> None:
        super().__init__()
        self.server = server
        self.prefix = prefix
        self.port = int(port or os.environ.get(SFTP_PORT_ENV) or 22)
        self.username = username or os.environ.get(SFTP_USERNAME_ENV) or None
        self.key_filename = key_filename or os.environ.get(SFTP_KEY_FILE_ENV) or None
        self.known_hosts = known_hosts or os.environ.get(SFTP_KNOWN_HOSTS_ENV) or None
        self.accept_unknown_hosts = (_env_flag(SFTP_ACCEPT_UNKNOWN_HOSTS_ENV) if accept_unknown_hosts is None
                                     else bool(accept_unknown_hosts))
        self.timeout = timeout
        self.ssh_client = None
        self.sftp_client = None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(server='{self.server}', prefix='{self.prefix}')"

    # ---- connection ------------------------------------------------------------------------------------------

    def _connect(self):
        import paramiko

        client = _paramiko_global("SSHClient")()
        client.load_system_host_keys()
        if os.path.isfile("/etc/ssh/ssh_known_hosts"):
            client.load_system_host_keys("/etc/ssh/ssh_known_hosts")
        if self.known_hosts:
            client.load_host_keys(self.known_hosts)
        if self.accept_unknown_hosts:
            client.set_missing_host_key_policy(_accept_unknown_host_policy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.server, port=self.port, username=self.username, key_filename=self.key_filename,
                           password=os.environ.get(SFTP_PASSWORD_ENV) or None, timeout=self.timeout)
            self.sftp_client = client.open_sftp()
        except Exception:
            client.close()
            raise
        self.ssh_client = client

    def close(self) -> None:
        """Close the SFTP session and SSH connection, if open."""
        sftp, ssh = self.sftp_client, self.ssh_client
        self.sftp_client = self.ssh_client = None
        if sftp is not None:
            sftp.close()
        if ssh is not None:
            ssh.close()

    @contextmanager
    def _connection(self):
        """Yield an SFTP client, opening (and afterwards closing) a connection if none is open."""
        if self.sftp_client is not None:
            yield self.sftp_client
            return
        self._connect()
        try:
            yield self.sftp_client
        finally:
            self.close()

    def _pre_run_hook(self):
        if self.sftp_client is None:
            self._connect()

    def set_is_overwrite(self, pipeline_files: PipelineFile | PipelineFileCollection,
                         dest_path_attr: str = "dest_path") -> None:
        """As :meth:`BaseStorageBroker.set_is_overwrite`, over one connection (opened if needed)."""
        with self._connection():
            super().set_is_overwrite(pipeline_files, dest_path_attr=dest_path_attr)

    def _post_run_hook(self):
        self.close()

    # ---- hooks -----------------------------------------------------------------------------------------------

    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        remote_path = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        remote_dir = posixpath.dirname(remote_path)
        if remote_dir:
            sftp_mkdir_p(self.sftp_client, remote_dir)
        with open(pipeline_file.src_path, "rb") as source:
            self.sftp_client.putfo(source, remote_path, confirm=True)

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        self.sftp_client.remove(self._get_absolute_dest_path(pipeline_file, dest_path_attr))

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        remote_path = posixpath.join(self.prefix, remote_pipeline_file.dest_path)
        with _removed_on_error(remote_pipeline_file.local_path), open(remote_pipeline_file.local_path, "wb") as f:
            self.sftp_client.getfo(remote_path, f)

    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        with self._connection() as client:
            return sftp_path_exists(client, abs_path)

    def _run_query(self, query):
        validate_relative_path(query)
        path_prefix = posixpath.join(self.prefix, query)
        search_root = posixpath.dirname(path_prefix) or "."
        results = RemotePipelineFileCollection()
        with self._connection() as client:
            if not sftp_path_exists(client, search_root):
                return results
            pending = [search_root]
            while pending:
                directory = pending.pop(0)
                entries = sorted(client.listdir_attr(directory), key=lambda a: a.filename)
                subdirs = []
                for attr in entries:
                    path = posixpath.join(directory, attr.filename)
                    if stat.S_ISDIR(attr.st_mode or 0):
                        subdirs.append(path)
                    elif stat.S_ISREG(attr.st_mode or 0) and path.startswith(path_prefix):
                        mtime = datetime.fromtimestamp(attr.st_mtime) if attr.st_mtime is not None else None
                        results.add(RemotePipelineFile(dest_path=posixpath.relpath(path, self.prefix or "."),
                                                       name=attr.filename, last_modified=mtime, size=attr.st_size),
                                    validate_unique=False)  # distinct paths: skip the quadratic uniqueness scan
                pending[0:0] = subdirs
        return results


validate_storage_broker: Validator = validate_type(BaseStorageBroker)

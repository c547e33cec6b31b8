"""A store on an SFTP server (paramiko): host-key checking, lazy connections, atomic uploads."""

from __future__ import annotations

import errno
import os
import posixpath
import secrets
import stat
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aodncore.pipeline.files import RemotePipelineFile, RemotePipelineFileCollection
from aodncore.util.misc import validate_relative_path

from .base import LOGGER, BaseStorageBroker, open_file, patch_points, removed_on_error

if TYPE_CHECKING:
    from aodncore.pipeline.files import PipelineFile, PipelineFileCollection

__all__ = ["SFTP_UPLOAD_TEMP_PREFIX", "SftpStorageBroker", "paramiko_global", "sftp_makedirs", "sftp_mkdir_p",
           "sftp_path_exists"]

#: environment variable opting in to accepting SFTP host keys that are not in any known_hosts file
SFTP_ACCEPT_UNKNOWN_HOSTS_ENV = "AODNCORE_SFTP_ACCEPT_UNKNOWN_HOSTS"
SFTP_KNOWN_HOSTS_ENV = "AODNCORE_SFTP_KNOWN_HOSTS"
SFTP_KEY_FILE_ENV = "AODNCORE_SFTP_KEY_FILE"
SFTP_USERNAME_ENV = "AODNCORE_SFTP_USERNAME"
SFTP_PORT_ENV = "AODNCORE_SFTP_PORT"
SFTP_PASSWORD_ENV = "AODNCORE_SFTP_PASSWORD"  # e.g. set by the Prefect flows from a Secret block

_TRUE_STRINGS = {"1", "true", "yes", "on"}

#: An upload in progress is written to ``<destination folder>/<this prefix><16 hex digits>`` and renamed over the
#: final name when complete (a dotfile: hidden from listings and ignored as a landing file; never listed by
#: :meth:`SftpStorageBroker.query`). One left behind means an upload was killed; it is safe to delete.
SFTP_UPLOAD_TEMP_PREFIX = ".aodncore-upload-"


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


def paramiko_global(name: str) -> Any:
    """paramiko's ``SSHClient`` / ``AutoAddPolicy`` as currently bound on ``aodncore.pipeline.storage`` (the patch
    targets of client test suites; bound there on first use)."""
    namespace = vars(patch_points())
    value = namespace.get(name)
    if value is None:
        import paramiko

        value = getattr(paramiko, name)
        namespace[name] = value
    return value


def _accept_unknown_host_policy() -> Any:
    """The opt-in policy for unknown host keys: ``AutoAddPolicy`` (keys kept in memory for this connection only,
    nothing written to known_hosts), logging each key it accepts."""
    auto_add = paramiko_global("AutoAddPolicy")
    if not isinstance(auto_add, type):  # replaced by a test double: use it as given
        return auto_add()

    class LoggingAutoAddPolicy(auto_add):
        def missing_host_key(self, client, hostname, key):
            LOGGER.warning("accepting unknown SSH host key %s %s for '%s' (explicitly enabled)", key.get_name(),
                           key.fingerprint, hostname)
            # in memory only: AutoAddPolicy itself would also save the key into a loaded known_hosts file
            client.get_host_keys().add(hostname, key.get_name(), key)

    return LoggingAutoAddPolicy()


def _replace(sftp_client: Any, source: str, target: str) -> None:
    """Rename ``source`` over ``target`` atomically (OpenSSH's ``posix-rename``); on a server without that
    extension, a plain rename, after removing an existing ``target`` (then a reader may briefly find no file,
    never a partial one)."""
    try:
        sftp_client.posix_rename(source, target)
        return
    except OSError as error:
        if not _unsupported(error):
            raise
    try:
        sftp_client.rename(source, target)
    except OSError:
        if not sftp_path_exists(sftp_client, target):
            raise
        sftp_client.remove(target)
        sftp_client.rename(source, target)


def _unsupported(error: OSError) -> bool:
    """True for the SFTP status "operation unsupported" (paramiko raises it as a plain ``IOError``)."""
    return "unsupported" in str(error).lower() or "not supported" in str(error).lower()


def _remove_quietly(sftp_client: Any, path: str) -> None:
    try:
        sftp_client.remove(path)
    except Exception:  # noqa: BLE001 - nothing there (it failed before creating it), or the connection is gone
        LOGGER.debug("could not remove the partial upload '%s'", path)


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

        client = paramiko_global("SSHClient")()
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
        """Write to a temporary name in the destination folder, then rename it over the final name: a reader
        never sees a half-written file, and an interrupted upload leaves nothing under the final name."""
        remote_path = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        remote_dir = posixpath.dirname(remote_path)
        if remote_dir:
            sftp_mkdir_p(self.sftp_client, remote_dir)
        temporary = posixpath.join(remote_dir, f"{SFTP_UPLOAD_TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            with open_file(pipeline_file.src_path, "rb") as source:
                self.sftp_client.putfo(source, temporary, confirm=True)
            _replace(self.sftp_client, temporary, remote_path)
        except BaseException:
            _remove_quietly(self.sftp_client, temporary)
            raise

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        self.sftp_client.remove(self._get_absolute_dest_path(pipeline_file, dest_path_attr))

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        remote_path = posixpath.join(self.prefix, remote_pipeline_file.dest_path)
        with removed_on_error(remote_pipeline_file.local_path), open_file(remote_pipeline_file.local_path, "wb") as f:
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
                    elif (stat.S_ISREG(attr.st_mode or 0) and path.startswith(path_prefix)
                          and not attr.filename.startswith(SFTP_UPLOAD_TEMP_PREFIX)):
                        mtime = datetime.fromtimestamp(attr.st_mtime) if attr.st_mtime is not None else None
                        results.add(RemotePipelineFile(dest_path=posixpath.relpath(path, self.prefix or "."),
                                                       name=attr.filename, last_modified=mtime, size=attr.st_size),
                                    validate_unique=False)  # distinct paths: skip the quadratic uniqueness scan
                pending[0:0] = subdirs
        return results

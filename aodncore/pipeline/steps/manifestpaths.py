"""Where the files named by a manifest may come from: allowed roots, relative entries, symlinks, missing files.

A manifest is untrusted input: without limits a ``.manifest`` listing ``/etc/passwd`` would publish it. Every
local path a manifest names must therefore lie under an *allowed root* (configuration key
``global.manifest_roots``, :data:`aodncore.limits.MANIFEST_ROOTS`):

* relative entries resolve against the manifest's own folder **in the landing area** (or, when a handler sets it,
  ``resolve_params['relative_path_root']``; a handler run on a plain path with neither keeps the classic root,
  ``global.wip_dir``);
* ``..`` components may move within a root but never out of all of them; a symlink is followed and its target must
  lie under a root too; an entry that is not an existing regular file is refused;
* violations raise :class:`~aodncore.pipeline.exceptions.UnsafeManifestEntryError` or
  :class:`~aodncore.pipeline.exceptions.ManifestEntryMissingError` (data errors: the manifest is quarantined,
  nothing of it is published), naming the manifest, the line or entry and the path.

Where the manifest was landed reaches the resolve step explicitly, as a :class:`LandingContext` (the ingest runner
sets ``HandlerBase.landing``). Default roots then are the landing area and the manifest's folder in it, and each
entry is **copied** (downloaded for ``s3://`` landing areas) into the working folder while it is checked, so the
content that is checked and published is the content that was inspected, whatever happens to the landing area
meanwhile. Without a landing context (a classic handler run on a plain path) the default roots are the manifest's
folder and the relative path root, and entries are referenced in place, as in the classic library.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from aodncore.limits import MANIFEST_ROOTS, limit_value
from aodncore.pipeline.exceptions import (
    DuplicateManifestEntryError,
    ManifestEntryMissingError,
    UnsafeManifestEntryError,
)

__all__ = ["LandingContext", "ManifestPaths"]

_S3 = "s3://"


@dataclass(frozen=True)
class LandingContext:
    """Where a landing object was found.

    :param area: the landing area being ingested: a folder, a ``file://`` URI or ``s3://bucket/prefix``
    :param location: the landing object itself: a path, ``file://`` URI or ``s3://bucket/key``
    """

    area: str
    location: str

    @property
    def folder(self) -> str:
        """The landing object's own folder (a local path, or an ``s3://bucket/prefix/`` URI)."""
        location = _normalise_root(self.location)
        if location.startswith(_S3):
            return location.rsplit("/", 1)[0] + "/"
        return os.path.dirname(location)


def _local_path(uri_or_path: str) -> str:
    if uri_or_path.startswith("file://"):
        parsed = urlparse(uri_or_path)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"manifest root {uri_or_path!r} names a remote host")
        return unquote(parsed.path)
    return uri_or_path


def _normalise_root(root: str) -> str:
    """``s3://bucket/prefix`` (normalised key) or an absolute, normalised local path (symlinks resolved)."""
    if root.startswith(_S3):
        bucket, _, key = root[len(_S3):].partition("/")
        key = posixpath.normpath(key) if key else ""
        return f"{_S3}{bucket}/{'' if key in ('', '.') else key}"
    return os.path.realpath(os.path.abspath(_local_path(root)))


def _is_under(path: str, root: str) -> bool:
    if root.startswith(_S3):
        if not path.startswith(_S3):
            return False
        prefix = root if root.endswith("/") else root + "/"
        return path == root.rstrip("/") or path.startswith(prefix)
    if path.startswith(_S3):
        return False
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ManifestPaths:
    """Turns the paths a manifest names into files that are safe to use, or refuses the manifest.

    :param manifest: the local path of the manifest being read (a working copy when ``landing`` is given)
    :param describe: ``describe(location)`` -> the prefix of error messages (names the manifest and the line)
    """

    def __init__(self, manifest: str, config: Any, resolve_params: dict | None, landing: LandingContext | None,
                 output_dir: str, describe: Any) -> None:
        params = resolve_params or {}
        self.landing = landing
        self.output_dir = output_dir
        self._describe = describe
        explicit_root = params.get("relative_path_root")
        if explicit_root is not None:
            self.relative_root = explicit_root
        elif landing is not None:
            self.relative_root = landing.folder
        else:
            self.relative_root = config.pipeline_config["global"]["wip_dir"]

        configured = limit_value(config, MANIFEST_ROOTS)
        if configured is not None:
            roots: list[str] = list(configured)
        elif landing is not None:
            roots = [landing.area, landing.folder]
        else:
            roots = [os.path.dirname(os.path.abspath(manifest)), self.relative_root]
        if explicit_root is not None:
            roots.append(explicit_root)
        self.roots = tuple(dict.fromkeys(_normalise_root(root) for root in roots if root))
        self.copy_entries = landing is not None
        self._seen: dict[str, str] = {}
        self._used_names: set[str] = set()

    # -- lexical resolution ----------------------------------------------------------------------------------------

    def absolute(self, entry: str) -> str:
        """The entry joined to the relative root (absolute entries unchanged), normalised."""
        if entry.startswith(_S3):
            return _normalise_root(entry)
        if os.path.isabs(entry):
            return os.path.normpath(entry)
        root = self.relative_root
        if root.startswith(_S3):
            return _normalise_root(root.rstrip("/") + "/" + entry)
        return os.path.normpath(os.path.join(os.path.abspath(_local_path(root)), entry))

    def _refuse(self, location: str, entry: str, reason: str) -> UnsafeManifestEntryError:
        return UnsafeManifestEntryError(f"{self._describe(location)}: '{entry}' {reason}")

    def _roots_text(self) -> str:
        return ", ".join(self.roots) or "(none)"

    def _check_under_roots(self, location: str, entry: str, path: str, what: str) -> None:
        if not any(_is_under(path, root) for root in self.roots):
            where = "is" if what == "names" and path == entry else f"{what} '{path}',"
            raise self._refuse(location, entry, f"{where} outside the allowed manifest roots "
                                                f"[{self._roots_text()}] ({MANIFEST_ROOTS.key})")

    def _checked_real_path(self, location: str, entry: str, path: str) -> str:
        """``path`` with symlinks resolved, refused unless that lies under a root."""
        real = os.path.realpath(path)
        if not any(_is_under(real, root) for root in self.roots):
            lexically_inside = any(_is_under(path, root) for root in self.roots)
            what = "is a symbolic link to" if lexically_inside or os.path.islink(path) else "names"
            self._check_under_roots(location, entry, real if what != "names" else path, what)
        return real

    def deletion_path(self, location: str, entry: str) -> str:
        """The path of a deletion entry (it need not exist), which must not point outside the roots."""
        path = self.absolute(entry)
        if not path.startswith(_S3):
            path = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        self._check_under_roots(location, entry, path, "names")
        return path

    # -- files ----------------------------------------------------------------------------------------------------

    def file(self, location: str, entry: str) -> str:
        """A local, regular file for ``entry``: checked in place, or copied into the working folder."""
        path = self.absolute(entry)
        if path.startswith(_S3):
            self._check_under_roots(location, entry, path, "names")
            return self._download(location, entry, path)
        real = self._checked_real_path(location, entry, path)
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise ManifestEntryMissingError(f"{self._describe(location)}: file '{path}' doesn't exist") from None
        except OSError as error:
            raise UnsafeManifestEntryError(f"{self._describe(location)}: file '{path}' cannot be read: "
                                           f"{error.strerror}") from error
        if not stat.S_ISREG(info.st_mode):
            raise ManifestEntryMissingError(f"{self._describe(location)}: '{path}' is not a regular file")
        self._remember(location, entry, real)
        return self._copy(location, entry, real) if self.copy_entries else real

    def files_below(self, location: str, entry: str) -> Iterable[str]:
        """The regular files below a directory entry (dir manifests), each checked like :meth:`file`."""
        from aodncore.util.fileops import list_regular_files

        real = self._checked_real_path(location, entry, self.absolute(entry))
        for file_path in list_regular_files(real, recursive=True):
            yield self.file(location, file_path)

    def is_directory(self, entry: str) -> bool:
        path = self.absolute(entry)
        return not path.startswith(_S3) and os.path.isdir(path)

    def _remember(self, location: str, entry: str, real: str) -> None:
        earlier = self._seen.get(real)
        if earlier is not None:
            raise DuplicateManifestEntryError(f"{self._describe(location)}: '{entry}' names the same file as "
                                              f"{earlier}")
        self._seen[real] = location

    def _target(self, name: str) -> str:
        """A path in the working folder keeping ``name`` (a numbered sub-folder when the name is taken)."""
        index = 0
        relative = name
        while relative in self._used_names:
            index += 1
            relative = os.path.join(f"{index}", name)
        self._used_names.add(relative)
        target = os.path.join(self.output_dir, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return target

    def _copy(self, location: str, entry: str, real: str) -> str:
        """Copy the checked file into the working folder, refusing it if it was swapped meanwhile."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(real, flags)
        except OSError as error:
            raise UnsafeManifestEntryError(f"{self._describe(location)}: file '{entry}' cannot be read: "
                                           f"{error.strerror}") from error
        with os.fdopen(fd, "rb") as source:
            opened = f"/proc/self/fd/{fd}"
            if os.path.exists(opened):  # what was really opened (Linux): must still be the file we checked
                self._check_under_roots(location, entry, os.path.realpath(opened), "was replaced by")
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ManifestEntryMissingError(f"{self._describe(location)}: '{entry}' is not a regular file")
            target = self._target(os.path.basename(real))
            with open(target, "xb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
        return target

    def _download(self, location: str, entry: str, uri: str) -> str:
        from aodncore.util import s3_util

        bucket, key = s3_util.get_s3_bucket(uri), s3_util.get_s3_key(uri)
        if not key or key.endswith("/"):
            raise ManifestEntryMissingError(f"{self._describe(location)}: '{entry}' does not name an object")
        self._remember(location, entry, uri)
        target = self._target(posixpath.basename(key))
        try:
            s3_util.download_object(bucket, key, target)
        except Exception as error:  # botocore errors carry no stable base class worth importing here
            code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey"}:
                raise ManifestEntryMissingError(f"{self._describe(location)}: object '{uri}' doesn't exist") \
                    from None
            raise
        return target

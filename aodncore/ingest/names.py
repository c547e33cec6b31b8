"""Landing names as they are shown and stored: lossless in the data path, escaped wherever a person reads them.

Local names that are not valid UTF-8 arrive as Python strings with surrogate escapes (``os.fsdecode``), S3 keys
may hold any Unicode character, newlines and terminal escapes included. The data path keeps the name exactly
(the file is fetched, checked and published under its own name; the ingest record keys on the exact URI); every
place a person reads it — log lines, console tables, artifacts, reason files — gets :func:`shown`:

* a byte that is not valid UTF-8 becomes ``\\xNN``;
* a character that is not printable (control characters such as newline, carriage return, escape, line and
  paragraph separators, bidirectional overrides, unassigned code points) becomes ``\\uNNNN`` / ``\\UNNNNNNNN``;
* a backslash becomes ``\\\\``, so an escape in the output is never ambiguous.

So a name can never forge an output line or a colour, and two different names are never shown alike.
"""

from __future__ import annotations

import os
import unicodedata

from aodncore.limits import MAX_NAME_BYTES

__all__ = ["local_name_problem", "name_bytes", "scrub", "shown", "storable_name", "unusable_name_reason"]

_SURROGATE_BYTES = range(0xDC80, 0xDD00)  # what os.fsdecode makes of the bytes 0x80-0xff of an invalid name


def _escape_char(char: str, backslash: bool = True) -> str:
    code = ord(char)
    if code in _SURROGATE_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if char == "\\":
        return "\\\\" if backslash else char
    if char.isprintable():
        return char
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: object) -> str:
    """``text`` as it may be printed or logged: one line, no terminal controls, undecodable bytes as ``\\xNN``."""
    value = str(text)
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(_escape_char(char) for char in value)


def scrub(text: object, keep: str = "\n") -> str:
    """Text that already shows its names (via :func:`shown`) made safe to output: undecodable bytes and control
    characters escaped, except those in ``keep`` (the text's own line breaks); backslashes left as they are."""
    value = str(text)
    if _printable_but(value, keep):
        return value
    return "".join(char if char in keep else _escape_char(char, backslash=False) for char in value)


def _printable_but(value: str, keep: str) -> bool:
    """Every character printable or in ``keep`` (a check per line, in C, when ``keep`` is one character: the
    handlers' log lines and compliance reports pass through here)."""
    if not keep:
        return value.isprintable()
    if len(keep) == 1:
        return all(part.isprintable() for part in value.split(keep))
    return all(char.isprintable() or char in keep for char in value)


def name_bytes(name: str) -> bytes:
    """The bytes of a file name as the local file system stores it (surrogate escapes undone)."""
    return os.fsencode(name)


def local_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a local file name, or None when it can."""
    if name in ("", ".", ".."):
        return f"'{shown(name)}' is not a file name"
    if "/" in name or "\x00" in name:
        return f"'{shown(name)}' contains '/' or a NUL character"
    try:
        length = len(name_bytes(name))
    except UnicodeError:
        return f"'{shown(name)}' cannot be encoded as a local file name"
    if length > MAX_NAME_BYTES:
        return f"the name is {length} bytes long; local file names are limited to {MAX_NAME_BYTES} bytes"
    return None


def unusable_name_reason(name: str) -> str | None:
    """Why a landing object called ``name`` is refused before any handler sees it (a data error), or None.

    * not valid UTF-8 (a local name with undecodable bytes): netCDF cannot open it, S3 cannot store it;
    * control characters or line separators (newline, escape, U+2028, …): they break line-oriented consumers
      downstream (the harvester's
      file lists, manifests, listings, shell scripts);
    * longer than :data:`~aodncore.limits.MAX_NAME_BYTES` bytes, or ``.``/``..``: it cannot exist on a local
      file system.
    """
    if name.isascii() and name.isprintable():  # the usual name: no undecodable byte, no control character
        return local_name_problem(name)
    return _general_unusable_name_reason(name)


def _general_unusable_name_reason(name: str) -> str | None:
    undecodable = sorted({ord(char) - 0xDC00 for char in name if 0xD800 <= ord(char) <= 0xDFFF})
    if undecodable:
        shown_bytes = ", ".join(f"0x{byte:02x}" for byte in undecodable[:4])
        return f"the name is not valid UTF-8 (byte {shown_bytes}); landing names must be UTF-8"
    controls = sorted({char for char in name if unicodedata.category(char) in ("Cc", "Zl", "Zp")})
    if controls:
        return f"the name contains control characters ({', '.join(shown(char) for char in controls[:4])})"
    return local_name_problem(name)


def _fits(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _percent_encoded(name: str) -> str:
    """Undecodable bytes, control and other unprintable characters and ``/`` as ``%XX`` (UTF-8 bytes)."""
    parts = []
    for char in name:
        code = ord(char)
        if code in _SURROGATE_BYTES:
            parts.append(f"%{code - 0xDC00:02X}")
        elif char == "/" or not char.isprintable():
            parts.extend(f"%{byte:02X}" for byte in char.encode("utf-8", errors="surrogatepass"))
        else:
            parts.append(char)
    return "".join(parts)


def storable_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """A name under which a copy of ``name``'s file can be stored anywhere (local folder, S3, SFTP).

    ``name`` itself when it is printable UTF-8 of at most ``limit`` bytes; otherwise undecodable bytes, control
    characters and ``/`` percent-encoded (``%FF``, ``%0A``), shortened in the middle (``<start>…<end>``) to fit
    ``limit`` bytes, keeping the extension. The exact name is in the reason sidecar's ``source``.
    """
    if unusable_name_reason(name) is None and len(name.encode("utf-8")) <= limit:
        return name
    text = _percent_encoded(name) or "unnamed"
    if text in (".", ".."):
        text = text.replace(".", "_")
    if len(text.encode("utf-8")) <= limit:
        return text
    stem, dot, extension = text.rpartition(".")
    tail = f"{dot}{extension}" if stem and len(extension) <= 16 else ""
    stem = stem if tail else text
    marker = "…"
    budget = limit - len(marker.encode("utf-8")) - len(tail.encode("utf-8"))
    head = _fits(stem, budget // 2)
    rest = budget - len(head.encode("utf-8"))
    end = stem.encode("utf-8")[-rest:].decode("utf-8", errors="ignore") if rest > 0 else ""
    return f"{head}{marker}{end}{tail}"

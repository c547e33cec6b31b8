"""Every safety limit of aodncore, with its default and its configuration key: the one place to read or change them.

Landing areas, archives and manifests are written by people and programs we do not control, so every resource a
single landing object may consume is bounded. Each limit below is a :class:`Limit` (configuration key, default,
unit, meaning); code reads the value in force through :func:`limit_value` (or the grouped helpers), never through
its own constant. The README's "Safety" section lists the same table for operators.

Configuration: numeric limits live in the optional ``limits`` section of ``pipeline.conf``, the manifest roots in
``global.manifest_roots``::

    {"global": {..., "manifest_roots": ["/data/landing", "s3://landing-bucket/incoming/"]},
     "limits": {"archive_max_total_bytes": "8 GiB", "check_timeout_seconds": 600}}

Sizes are integers (bytes) or strings with a unit (``"512 MiB"``, ``"4GiB"``, ``"100 MB"``); times are seconds
(integer or decimal). For the check caps, ``0`` switches the cap off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ARCHIVE_MAX_MEMBERS",
    "ARCHIVE_MAX_MEMBER_BYTES",
    "ARCHIVE_MAX_RATIO",
    "ARCHIVE_MAX_TOTAL_BYTES",
    "ARCHIVE_RATIO_THRESHOLD_BYTES",
    "CAPPED_CHILD_GROWTH_SLACK_BYTES",
    "CAPPED_CHILD_MAX_CALLS",
    "CHECK_MEMORY_BYTES",
    "CHECK_TIMEOUT_SECONDS",
    "CLI_SETTLE_SECONDS",
    "FILE_EVENTS_FLUSH_SECONDS",
    "LANDING_SETTLE_SECONDS",
    "LIMITS",
    "LIMITS_SECTION",
    "LISTED_PER_REASON",
    "MANIFEST_ROOTS",
    "MAX_NAME_BYTES",
    "WORKER_POOL_IDLE_SECONDS",
    "ArchiveLimits",
    "CheckLimits",
    "Limit",
    "archive_limits",
    "check_limits",
    "format_size",
    "limit_value",
    "limits_schema",
    "parse_size",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: configuration section holding the numeric limits
LIMITS_SECTION = "limits"


@dataclass(frozen=True)
class Limit:
    """One safety limit: where it is configured, its default and what it bounds."""

    section: str
    name: str
    default: Any
    unit: str  # "bytes", "seconds", "count", "ratio" or "paths"
    description: str

    @property
    def key(self) -> str:
        """The configuration key, e.g. ``limits.archive_max_total_bytes``."""
        return f"{self.section}.{self.name}"


# -- archives (zip and gzip), enforced while decompressing: extraction stops at the limit, never after -------------

ARCHIVE_MAX_TOTAL_BYTES = Limit(
    LIMITS_SECTION, "archive_max_total_bytes", 4 * GiB, "bytes",
    "Most bytes one archive (zip or gzip) may decompress to, all members together.")
ARCHIVE_MAX_MEMBER_BYTES = Limit(
    LIMITS_SECTION, "archive_max_member_bytes", 2 * GiB, "bytes",
    "Most bytes one archive member (or the content of a gzip file) may decompress to.")
ARCHIVE_MAX_RATIO = Limit(
    LIMITS_SECTION, "archive_max_ratio", 100, "ratio",
    "Highest decompressed:compressed ratio, of each member and of the whole archive (output so far against the "
    "archive's size), once the output is larger than archive_ratio_threshold_bytes.")
ARCHIVE_RATIO_THRESHOLD_BYTES = Limit(
    LIMITS_SECTION, "archive_ratio_threshold_bytes", 16 * MiB, "bytes",
    "Output below this size is exempt from the ratio limit (small files compress absurdly well).")
ARCHIVE_MAX_MEMBERS = Limit(
    LIMITS_SECTION, "archive_max_members", 10_000, "count",
    "Most entries (files and folders) a zip archive may have.")

# -- checks, each file's compliance checks run in a child process under these caps --------------------------------

CHECK_MEMORY_BYTES = Limit(
    LIMITS_SECTION, "check_memory_bytes", 2 * GiB, "bytes",
    "Memory (address space beyond what the process already uses) the compliance checks of one file may use; "
    "0 = no cap (and no child process).")
CHECK_TIMEOUT_SECONDS = Limit(
    LIMITS_SECTION, "check_timeout_seconds", 300, "seconds",
    "Wall-clock time the compliance checks of one file may take; 0 = no cap.")

#: A long-lived capped child (pool workers, the fork host: :mod:`aodncore.util.cappedchild`) is replaced after this
#: many calls: bounds what no measurement sees (fragmentation, caches filled by earlier files) at one fork per
#: this many checked files. Not configurable (a process-level mechanism, not a pipeline's setting).
CAPPED_CHILD_MAX_CALLS = 200

#: ... and once its peak address space exceeds its address space at fork time by more than this (at most a quarter
#: of the memory cap), so that every call's memory cap stays "this much over a warm process" within this margin.
#: Checking the test suite's IMOS files with ``cf:1.6`` grows a warm child by a few MiB in its first calls, then not.
CAPPED_CHILD_GROWTH_SLACK_BYTES = 64 * MiB

# -- manifests ----------------------------------------------------------------------------------------------------

MANIFEST_ROOTS = Limit(
    "global", "manifest_roots", None, "paths",
    "Folders (or file:// / s3:// URIs) the files named by a manifest must lie under. Default: the landing area "
    "being ingested and the manifest's own folder in it (a handler run on a plain path: the manifest's folder "
    "and the relative path root, i.e. resolve_params.relative_path_root or global.wip_dir).")

# -- landing areas ----------------------------------------------------------------------------------------------

LANDING_SETTLE_SECONDS = Limit(
    LIMITS_SECTION, "landing_settle_seconds", 30, "seconds",
    "A local landing file is taken only after its size, modification and change times have not changed for this "
    "long (a writer may pause mid-file); younger files are 'waiting' and left for a later run. The default of the "
    "ingest flows, so of `aodncore serve` and every deployment (flow parameter settle_seconds); S3 objects are "
    "never held back (they appear only complete).")

#: The settle time of a one-shot ``aodncore ingest`` when neither ``--settle`` nor the config sets one. Shorter than
#: :data:`LANDING_SETTLE_SECONDS` because a person is waiting, and paired with waiting *within* the run: a file
#: changed less than this long ago is looked at again once it would have settled (at most this long later) and
#: taken only if it did not change meanwhile. So the README quick start, run seconds after a ``git clone`` (which
#: gives every file a fresh modification time), pauses briefly instead of reporting every file as waiting.
CLI_SETTLE_SECONDS = 10.0

#: Longest file name (in bytes, UTF-8 with surrogate escapes) a local file system accepts (``NAME_MAX``); not
#: configurable: working copies must stay within it whatever the landing name.
MAX_NAME_BYTES = 255

# -- run results ------------------------------------------------------------------------------------------------

#: Entries of a run that need nobody's attention (published, skipped as already ingested, ignored) listed in full
#: in its result, table artifact and console summary, per status and reason; the rest are counted only, so that
#: neither memory nor the result grows with the run (every entry is in the run's report, ``--report FILE``). Not
#: configurable. Entries needing attention (quarantined, failed, waiting, …) are always listed.
LISTED_PER_REASON = 20

# -- worker processes ---------------------------------------------------------------------------------------------

#: How long the worker processes of a finished ingest run wait, idle, for the next run of the same process with the
#: same worker count, log level and environment (a script or notebook calling the flows, a benchmark) before they
#: are stopped; not a per-pipeline setting (the pool outlives any one config). ``AODNCORE_WORKER_POOL_IDLE_SECONDS``
#: overrides it; ``0`` stops the workers at the end of every run. See :mod:`aodncore.ingest.keptpools`.
WORKER_POOL_IDLE_SECONDS = 60.0

# -- per-file Prefect events --------------------------------------------------------------------------------------

#: How often a run's per-file Prefect events (``aodncore.file.*``) are posted to the API, in seconds (sooner when
#: 200 are waiting; the rest always at the end of the run, also when it fails). Each ``POST /events`` costs the
#: flow process and the Prefect server a fixed amount besides its events (BENCHMARKS.md: 2 s instead of 0.5 s saves
#: ~0.1 ms of server CPU per file at 100 files/s); an automation reacting to a file's event hears of it up to this
#: much later. Not a per-pipeline setting: ``AODNCORE_FILE_EVENTS_FLUSH_SECONDS`` overrides it (``0``: post as
#: soon as the sending thread gets to them). See :mod:`aodncore.prefect.fileevents`.
FILE_EVENTS_FLUSH_SECONDS = 2.0

#: every configurable limit, in the order the documentation lists them
LIMITS: tuple[Limit, ...] = (
    ARCHIVE_MAX_TOTAL_BYTES,
    ARCHIVE_MAX_MEMBER_BYTES,
    ARCHIVE_MAX_RATIO,
    ARCHIVE_RATIO_THRESHOLD_BYTES,
    ARCHIVE_MAX_MEMBERS,
    CHECK_MEMORY_BYTES,
    CHECK_TIMEOUT_SECONDS,
    MANIFEST_ROOTS,
    LANDING_SETTLE_SECONDS,
)

# -- parsing and formatting -------------------------------------------------------------------------------------

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000 ** 2, "mb": 1000 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3, "t": 1000 ** 4,
    "tb": 1000 ** 4,
    "kib": KiB, "mib": MiB, "gib": GiB, "tib": 1024 * GiB,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
#: JSON-schema pattern of a size string (kept in step with :func:`parse_size`)
SIZE_STRING_PATTERN = r"^\s*\d+(\.\d+)?\s*([bB]|[kKmMgGtT][bB]?|[kKmMgGtT][iI][bB])?\s*$"


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string such as ``"512 MiB"``, ``"4GiB"``, ``"100 MB"`` (``ValueError`` else)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size: {value!r} (must not be negative)")
        return value
    if isinstance(value, float) and value >= 0:
        return int(value)
    match = _SIZE_PATTERN.match(value) if isinstance(value, str) else None
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size: {value!r} (expected bytes, or a number with a unit such as '512 MiB')")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_size(size: int) -> str:
    """``4 GiB``, ``16 MiB``, ``1536 KiB`` or ``123 bytes``: the largest binary unit that divides ``size``."""
    for unit, factor in (("TiB", 1024 * GiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _parse(limit: Limit, value: Any) -> Any:
    if limit.unit == "bytes":
        return parse_size(value)
    if limit.unit in ("seconds", "ratio"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{limit.key}: invalid value {value!r} (expected a number >= 0)")
        return value
    if limit.unit == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{limit.key}: invalid value {value!r} (expected an integer >= 1)")
        return value
    if limit.unit == "paths":
        if value is None:
            return None
        if isinstance(value, str) or not all(isinstance(item, str) and item for item in value):
            raise ValueError(f"{limit.key}: invalid value {value!r} (expected a list of folders or URIs)")
        return tuple(value)
    raise ValueError(f"{limit.key}: unknown unit {limit.unit!r}")  # pragma: no cover - programming error


def _pipeline_config(config: Any) -> Mapping[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return config
    return getattr(config, "pipeline_config", None) or {}


def limit_value(config: Any, limit: Limit) -> Any:
    """The value of ``limit`` in force: the configured one (parsed), else the default.

    :param config: a ``LazyConfigManager``, a ``pipeline.conf`` mapping, or None (defaults only)
    :raises ValueError: if the configured value is invalid (the message names the key)
    """
    section = _pipeline_config(config).get(limit.section) or {}
    value = section.get(limit.name)
    if value is None:
        return limit.default if limit.unit != "paths" else None
    try:
        return _parse(limit, value)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(limit.key) else f"{limit.key}: {message}") from error


# -- grouped values for the code that enforces them ----------------------------------------------------------------

@dataclass(frozen=True)
class ArchiveLimits:
    """Decompression caps, enforced while extracting zip and gzip files."""

    max_total_bytes: int = ARCHIVE_MAX_TOTAL_BYTES.default
    max_member_bytes: int = ARCHIVE_MAX_MEMBER_BYTES.default
    max_ratio: float = ARCHIVE_MAX_RATIO.default
    ratio_threshold_bytes: int = ARCHIVE_RATIO_THRESHOLD_BYTES.default
    max_members: int = ARCHIVE_MAX_MEMBERS.default


@dataclass(frozen=True)
class CheckLimits:
    """Caps on one file's compliance checks (0 = no cap)."""

    memory_bytes: int = CHECK_MEMORY_BYTES.default
    timeout_seconds: float = CHECK_TIMEOUT_SECONDS.default

    @property
    def enabled(self) -> bool:
        return bool(self.memory_bytes or self.timeout_seconds)


def archive_limits(config: Any = None) -> ArchiveLimits:
    """The decompression caps in force for ``config`` (defaults for None)."""
    return ArchiveLimits(
        max_total_bytes=limit_value(config, ARCHIVE_MAX_TOTAL_BYTES),
        max_member_bytes=limit_value(config, ARCHIVE_MAX_MEMBER_BYTES),
        max_ratio=limit_value(config, ARCHIVE_MAX_RATIO),
        ratio_threshold_bytes=limit_value(config, ARCHIVE_RATIO_THRESHOLD_BYTES),
        max_members=limit_value(config, ARCHIVE_MAX_MEMBERS),
    )


def check_limits(config: Any = None) -> CheckLimits:
    """The compliance-check caps in force for ``config`` (defaults for None)."""
    return CheckLimits(
        memory_bytes=limit_value(config, CHECK_MEMORY_BYTES),
        timeout_seconds=limit_value(config, CHECK_TIMEOUT_SECONDS),
    )


def limits_schema() -> dict[str, Any]:
    """JSON schema of the ``limits`` configuration section (used by :mod:`aodncore.pipeline.schema`)."""
    size = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_STRING_PATTERN}]}
    kinds = {
        "bytes": size,
        "seconds": {"type": "number", "minimum": 0},
        "ratio": {"type": "number", "minimum": 0},
        "count": {"type": "integer", "minimum": 1},
    }
    properties = {limit.name: kinds[limit.unit] for limit in LIMITS if limit.section == LIMITS_SECTION}
    return {"type": "object", "properties": properties, "additionalProperties": False}

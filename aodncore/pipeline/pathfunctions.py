"""Destination path functions shipped with aodncore (entry-point group ``pipeline.path_functions``)."""

from __future__ import annotations

import os
import re

from aodncore.pipeline.exceptions import InvalidFileNameError
from aodncore.pipeline.fileclassifier import FileClassifier

__all__ = ["FALLBACK_DIR", "imos_dest_path"]

FALLBACK_DIR = "UNCLASSIFIED"
"""Top-level directory for files whose names do not follow the IMOS convention."""

IMOS_PREFIX = "IMOS"
MIN_FIELDS = 3
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9]+$")


def imos_dest_path(path: str | os.PathLike[str]) -> str:
    """Destination path of a file from its IMOS-convention name; the path function of the default handler.

    The rule (only the base name of ``path`` is used):

    * ``IMOS_<FACILITY>-<SUBFACILITY>_<...>.<ext>`` goes to ``IMOS/<FACILITY>/<SUBFACILITY>/<basename>``; any
      further ``-`` separated parts of the facility field become further directory levels
      (``IMOS_SRS-OC-BODBAW_...`` -> ``IMOS/SRS/OC/BODBAW/<basename>``);
    * ``IMOS_<FACILITY>_<...>.<ext>`` (no sub-facility) goes to ``IMOS/<FACILITY>/<basename>``;
    * anything else goes to ``UNCLASSIFIED/<basename>`` (see :data:`FALLBACK_DIR`): names not starting with
      ``IMOS_``, names without an extension, names with fewer than three ``_`` separated fields, and facility
      fields with empty or non-alphanumeric parts (so no name can produce ``..`` or other path tricks).

    The result always uses ``/`` separators, as store keys do.

    :raises ValueError: if ``path`` has no file name (empty, or ending with a separator)
    """
    basename = os.path.basename(os.fspath(path))
    if not basename:
        raise ValueError(f"path '{path}' has no file name")
    return "/".join([*_classify(basename), basename])


def _classify(basename: str) -> list[str]:
    if not basename.startswith(f"{IMOS_PREFIX}_") or "." not in basename:
        return [FALLBACK_DIR]
    try:
        FileClassifier._get_file_name_fields(basename, min_fields=MIN_FIELDS)
        facility_parts = FileClassifier._get_facility(basename, check_sub=False)
    except InvalidFileNameError:
        return [FALLBACK_DIR]
    if not all(_COMPONENT_RE.match(part) for part in facility_parts):
        return [FALLBACK_DIR]
    return [IMOS_PREFIX, *facility_parts]

"""Dataset handlers written the way real handler packages write them: a ``HandlerBase`` subclass and
``functools.partial`` variants of it with presets, registered as ``pipeline.handlers`` entry points.

Importable by name (``compat_handlers``) from the tests and from worker processes.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from aodncore.pipeline import HandlerBase, PipelineFilePublishType

XBT_FILE = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
OTHER_FILE = "IMOS_SOOP-TRV_B_20100225T073727Z_VMQ9273_FV01_END-20100225T131607Z_C-2016225T100000Z.nc"


def xbt_dest_path(path: str) -> str:
    """Destination of an XBT file in the published store."""
    return f"COMPAT/SOOP/XBT/{os.path.basename(path)}"


def xbt_archive_path(path: str) -> str:
    """Destination of an XBT file (and the original input) in the archive."""
    return f"COMPAT/ARCHIVE/XBT/{os.path.basename(path)}"


class SoopHandler(HandlerBase):
    """A generic ship-of-opportunity handler: its variants differ only by the presets they are given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.HARVEST_ARCHIVE_UPLOAD


#: the keyword presets of the XBT variant, as handler packages define them
XBT_OPTS = {
    "allowed_extensions": [".nc"],
    "allowed_regexes": [r"^IMOS_SOOP-XBT_T_.*\.nc$"],
    "allowed_dest_path_regexes": [r"^COMPAT/SOOP/XBT/"],
    "allowed_archive_path_regexes": [r"^COMPAT/ARCHIVE/XBT/"],
    "archive_input_file": True,
    "harvest_type": None,
    "dest_path_function": xbt_dest_path,
    "archive_path_function": xbt_archive_path,
    "check_params": {"checks": ["cf:1.6"]},
}

SoopXbtHandler = partial(SoopHandler, **XBT_OPTS)

#: a partial of a partial (Python flattens it): one more preset on top of the XBT ones
SoopXbtQuietHandler = partial(SoopXbtHandler, notify_params={"error_notify_list": []})


def write_entry_points(folder: Path, handlers: dict[str, str]) -> Path:
    """Make ``folder`` (to be put on ``sys.path``) hold an installed distribution publishing ``handlers``
    (entry-point name -> ``module:attribute``) in the ``pipeline.handlers`` group."""
    dist_info = folder / "compat_handler_package-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: compat-handler-package\nVersion: 1.0\n")
    lines = ["[pipeline.handlers]", *(f"{name} = {target}" for name, target in handlers.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder

"""``ImosGenericHandler``: the embedded default handler.

Publishes every resolved file to ``IMOS/<FACILITY>/<SUB-FACILITY>/<name>`` following the IMOS file-naming
convention (:func:`aodncore.pipeline.pathfunctions.imos_dest_path`; unrecognised names go under
``UNCLASSIFIED/``), archives the original input file, and needs no harvester.
"""

from __future__ import annotations

from typing import Any

from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.handlerbase import HandlerBase
from aodncore.pipeline.pathfunctions import imos_dest_path

__all__ = ["ImosGenericHandler"]


class ImosGenericHandler(HandlerBase):
    """Upload each file to its IMOS-convention destination; archive the input; no database harvest."""

    def __init__(self, input_file: str, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("harvest_type", None)
        kwargs.setdefault("archive_input_file", True)
        super().__init__(input_file, *args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.UPLOAD_ONLY
        self.default_deletion_publish_type = PipelineFilePublishType.DELETE_ONLY

    dest_path = staticmethod(imos_dest_path)

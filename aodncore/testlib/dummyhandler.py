"""``DummyHandler``: the example handler of the test configuration."""

from __future__ import annotations

import os
from typing import Any

from aodncore.pipeline import HandlerBase
from aodncore.pipeline.common import PipelineFileCheckType, PipelineFilePublishType

__all__ = ["DummyHandler"]


class DummyHandler(HandlerBase):
    """Archives, harvests and uploads everything; only the first resolved file is checked."""

    #: additions are archived, harvested and uploaded
    _ADDITION_TYPE = PipelineFilePublishType.HARVEST_ARCHIVE_UPLOAD

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = self._ADDITION_TYPE
        self.opendap_root = self.config.pipeline_config["global"].get("opendap_root")

    @staticmethod
    def dest_path(filename: str) -> str:
        return os.path.join("DUMMY", "path", f"renamed-from-handler-method-{filename}")

    def preprocess(self) -> None:
        additions = self.file_collection.filter_by_attribute_value("is_deletion", False)
        for index, pipeline_file in enumerate(additions):
            if index == 0:
                continue
            if pipeline_file.check_type is PipelineFileCheckType.UNSET:
                pipeline_file.check_type = PipelineFileCheckType.NO_ACTION
        self.logger.info("DummyHandler preprocess: %d file(s)", len(self.file_collection))

    def process(self) -> None:
        self.logger.info("DummyHandler process")

    def postprocess(self) -> None:
        self.logger.info("DummyHandler postprocess")

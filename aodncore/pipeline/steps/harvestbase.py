"""``BaseHarvesterRunner``: what every harvester runner (Talend, CSV, none) has in common."""

from __future__ import annotations

import logging
from typing import Any

from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.steps.basestep import BaseStepRunner

__all__ = ["BaseHarvesterRunner"]


class BaseHarvesterRunner(BaseStepRunner):
    """Common parts of the harvester runners: the storage broker, the harvest parameters and the logger."""

    def __init__(self, storage_broker: Any, harvest_params: dict | None, config: Any, logger: Any) -> None:
        super().__init__(config, logger)
        self.storage_broker = storage_broker
        self.params = dict(harvest_params) if harvest_params else {}
        self.unexpected_pipeline_files: list = []

    @property
    def config(self) -> Any:
        return self._config

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter:
        return self._get_logger()

    def run(self, pipeline_files: PipelineFileCollection) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

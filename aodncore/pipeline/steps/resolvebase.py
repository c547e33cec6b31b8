"""What every resolve runner shares: the base class and the checks of destination paths named in inputs."""

from __future__ import annotations

import abc
import os
import re
from typing import Any

from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.steps.basestep import BaseStepRunner
from aodncore.util.fileops import list_regular_files

__all__ = ["BaseResolveRunner", "describe_unsafe_path", "has_parent_reference"]


def has_parent_reference(path: str) -> bool:
    """True if any component of ``path`` (split on ``/`` and ``\\``) is ``..``."""
    return ".." in re.split(r"[/\\]", path)


def describe_unsafe_path(path: str) -> str | None:
    """Return why ``path`` cannot be used as a destination path, or None when it is acceptable."""
    if os.path.isabs(path) or path.startswith("\\"):
        return "must be a relative path"
    if has_parent_reference(path):
        return "must not contain '..' components"
    return None


# ----------------------------------------------------------------------------------------------------------------
# base class
# ----------------------------------------------------------------------------------------------------------------

class BaseResolveRunner(BaseStepRunner, abc.ABC):
    """Base of all resolve runners: knows the input file and the directory files are placed in."""

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any) -> None:
        super().__init__(config, logger)
        self.input_file = input_file
        self.output_dir = output_dir
        self._collection: PipelineFileCollection = PipelineFileCollection()

    @abc.abstractmethod
    def run(self) -> PipelineFileCollection:
        """Resolve the input file and return the resulting collection."""

    def _add_directory_contents(self, directory: str, recursive: bool) -> None:
        for path in list_regular_files(directory, recursive=recursive):
            self._collection.add(path)

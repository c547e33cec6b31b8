"""The pipeline: file model, steps, configuration and the classic ``HandlerBase`` driver.

Public names are imported lazily so that importing one sub-module (``aodncore.pipeline.files``) stays cheap.
"""

from importlib import import_module
from typing import Any

__all__ = [
    "CheckResult",
    "FileClassifier",
    "FileType",
    "HandlerBase",
    "HandlerResult",
    "NotificationRecipientType",
    "PipelineFile",
    "PipelineFileCheckType",
    "PipelineFileCollection",
    "PipelineFilePublishType",
    "RemotePipelineFile",
    "RemotePipelineFileCollection",
    "validate_pipelinefilecollection",
    "validate_pipelinefile_or_string",
]

_LOCATIONS = {
    "CheckResult": "common",
    "FileType": "common",
    "HandlerResult": "common",
    "NotificationRecipientType": "common",
    "PipelineFileCheckType": "common",
    "PipelineFilePublishType": "common",
    "FileClassifier": "fileclassifier",
    "HandlerBase": "handlerbase",
    "PipelineFile": "files",
    "PipelineFileCollection": "files",
    "RemotePipelineFile": "files",
    "RemotePipelineFileCollection": "files",
    "validate_pipelinefilecollection": "files",
    "validate_pipelinefile_or_string": "files",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LOCATIONS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The pipeline: file model, steps, configuration and the classic ``HandlerBase`` driver.

Public names are imported lazily so that importing one sub-module (``aodncore.pipeline.files``) stays cheap.
"""

from aodncore._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)

"""``PrefectHandlerBase``: ``HandlerBase`` for use inside Prefect flows, reading from an S3 landing bucket.

Differences from ``HandlerBase`` (all safe defaults, no hidden set-up):

* Logging goes to the Prefect run logger when called inside a flow or task run, and to the standard ``aodncore``
  logger otherwise. ``init_logger(logger_function)`` is still available but never required.
* ``input_file`` may be ``s3://bucket/key``. The ETag becomes ``file_checksum``; pass ``etag=`` (or set
  ``handler.etag``) to pin the version you were notified about, otherwise it is looked up.
* An S3 input is *copied* into the run's own working directory. The landing object is deleted only after the
  run published it, or after a refused file (an error about the input, :mod:`aodncore.ingest.classify`) was
  stored in the error store with a ``.reason.json`` sidecar. A system error, or a failure to quarantine, leaves
  the landing object in place for a retry.
* A local ``input_file`` is processed exactly like ``HandlerBase`` does (it is never deleted).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

from aodncore.pipeline.exceptions import InvalidInputFileError
from aodncore.pipeline.files import PipelineFile
from aodncore.pipeline.handlerbase import NO_TASK, HandlerBase
from aodncore.pipeline.log import get_pipeline_logger
from aodncore.util import s3_util

__all__ = ["PrefectHandlerBase"]

FALLBACK_LOGGER_NAME = "aodncore.prefect.handler"
_DOWNLOAD_CHUNK = 1024 * 1024


def _default_logger_function() -> Callable[[str | None], Any]:
    """Prefect's run logger inside a run, else the standard ``aodncore`` logger."""
    try:
        from prefect import get_run_logger
        from prefect.context import FlowRunContext, TaskRunContext

        if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
            return lambda _name: get_run_logger()
    except ImportError:  # pragma: no cover - prefect is a dependency, but keep the handler usable without it
        pass
    return lambda _name: logging.getLogger(FALLBACK_LOGGER_NAME)


@s3_util.s3_retry
def _download_if_match(bucket: str, key: str, local_path: str, conditions: dict[str, str]) -> None:
    """Stream an object to ``local_path`` with a conditional GET (``IfMatch``); transient errors are retried."""
    response = s3_util.get_s3_client().get_object(Bucket=bucket, Key=key, **conditions)
    with response["Body"] as body, open(local_path, "wb") as handle:
        shutil.copyfileobj(body, handle, _DOWNLOAD_CHUNK)


def _is_precondition_failed(error: BaseException) -> bool:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"412", "PreconditionFailed"}


def _is_data_error(error: BaseException | None) -> bool:
    """The ingest layer's rule (:mod:`aodncore.ingest.classify`): quarantine the landing object, or keep it."""
    from aodncore.ingest.classify import is_data_error  # local: the ingest layer sits above the pipeline

    return error is not None and is_data_error(error)


class PrefectHandlerBase(HandlerBase):
    """A handler whose input may be an S3 landing object; see the module documentation."""

    def __init__(self, input_file: str, *args: Any, etag: str | None = None, **kwargs: Any) -> None:
        super().__init__(input_file, *args, **kwargs)
        self.etag = etag
        self._local_input: str | None = None
        self._landing_done = False

    @property
    def is_s3_input(self) -> bool:
        return s3_util.is_s3(self.input_file)

    # -- logging -------------------------------------------------------------------------------------------------

    def init_logger(self, logger_function: Callable[[str | None], Any]) -> None:
        """Use ``logger_function`` (e.g. ``prefect.get_run_logger``) for this handler's log records."""
        self._init_logger(logger_function)

    def _init_logger(self, logger_function: Callable[[str | None], Any] | None = None) -> None:
        if logger_function is None:
            task_logger = getattr(self.celery_task, "logger", None)
            if task_logger is not None:
                super()._init_logger()
                return
            logger_function = _default_logger_function()
        self._logger = get_pipeline_logger(None, logger_function=logger_function)
        self._set_library_log_levels()
        self._celery_task_id = self.celery_task_id
        self._celery_task_name = self.celery_task_name or NO_TASK

    # -- input ---------------------------------------------------------------------------------------------------

    def _set_input_file_attributes(self) -> None:
        if not self.is_s3_input:
            if self.etag:
                self._file_checksum = self.etag
                self._set_input_file_name_attributes()
                return
            super()._set_input_file_attributes()
            return
        if not self.etag:
            try:
                bucket, key = s3_util.get_s3_bucket(self.input_file), s3_util.get_s3_key(self.input_file)
                self.etag = s3_util.get_etag(bucket, key)
            except Exception as error:  # noqa: BLE001 - any failure means the input cannot be used
                raise InvalidInputFileError(f"cannot read landing object '{self.input_file}': {error}") from error
        self._file_checksum = self.etag.strip('"')
        self._set_input_file_name_attributes()

    def _ensure_local_input(self) -> str:
        """Download an S3 input (the listed version) into the working directory once; return the local path."""
        if not self.is_s3_input:
            return self.input_file
        if self._local_input is None:
            landing_dir = os.path.join(self.temp_dir, "landing")
            os.makedirs(landing_dir, exist_ok=True)
            local_path = os.path.join(landing_dir, os.path.basename(s3_util.get_s3_key(self.input_file)))
            bucket, key = s3_util.get_s3_bucket(self.input_file), s3_util.get_s3_key(self.input_file)
            # only the version whose ETag was read (and becomes file_checksum) may be processed; a conditional GET
            # works for every ETag scheme (multipart, SSE-KMS)
            conditions = {"IfMatch": '"{}"'.format(self.etag.strip('"'))} if self.etag else {}
            try:
                _download_if_match(bucket, key, local_path, conditions)
            except Exception as error:  # noqa: BLE001
                if _is_precondition_failed(error):
                    raise InvalidInputFileError(
                        f"landing object '{self.input_file}' no longer has ETag {conditions['IfMatch']}; "
                        "it was replaced during the run and is left for a later run"
                    ) from error
                raise InvalidInputFileError(f"cannot download landing object '{self.input_file}': {error}") from error
            self._local_input = local_path
        return self._local_input

    def _resolve(self) -> None:
        from aodncore.pipeline.steps.resolve import get_resolve_runner

        local_input = self._ensure_local_input()
        runner = get_resolve_runner(local_input, self.collection_dir, self.config, self.logger, self.resolve_params,
                                    landing=self._landing_context())
        self._resolve_with(runner)

    def _landing_context(self) -> Any:
        """An ``s3://`` input is itself the landing object: its folder is the landing area for its manifests."""
        landing = super()._landing_context()
        if landing is None and self.is_s3_input:
            from aodncore.pipeline.steps.manifestpaths import LandingContext

            folder = self.input_file.rsplit("/", 1)[0] + "/"
            landing = LandingContext(area=folder, location=self.input_file)
        return landing

    def _archive(self) -> None:
        if not (self.archive_input_file and self.is_s3_input):
            super()._archive()
            return
        # the classic archive step would read the landing object through a local path: skip it there
        requested, self.archive_input_file = self.archive_input_file, False
        try:
            super()._archive()
        finally:
            self.archive_input_file = requested
        local_copy = PipelineFile(self._ensure_local_input(), file_update_callback=self._file_update_callback)
        preset = self.input_file_object.publish_type
        local_copy.publish_type = preset if preset.is_addition_type else type(preset).ARCHIVE_ONLY
        local_copy.archive_path = self.input_file_archive_path
        self._archive_store_runner.run(local_copy)

    # -- landing object lifecycle ----------------------------------------------------------------------------------

    def _complete_success(self) -> None:
        super()._complete_success()
        if self.is_s3_input:
            self._remove_landing_object()

    def _complete_with_errors(self) -> None:
        super()._complete_with_errors()
        if self.is_s3_input and _is_data_error(self.error):
            from aodncore.ingest.quarantine import quarantine_file

            record = quarantine_file(
                self._ensure_local_input(),
                error_uri=self.config.pipeline_config["global"]["error_uri"],
                pipeline_name=self._pipeline_name,
                ingest_id=uuid.uuid4().hex[:12],
                source=self.input_file,
                fingerprint=self.file_checksum or "",
                error=self.error,
                error_details=self.error_details,
                collection=self.file_collection,
                handler_name=type(self).__name__,
            )
            self.logger.info("refused file stored in the error store: %s", record.file_uri)
            self._remove_landing_object()
        elif self.is_s3_input:
            self.logger.warning("landing object '%s' kept for a retry after a system error", self.input_file)

    def _remove_landing_object(self) -> None:
        bucket, key = s3_util.get_s3_bucket(self.input_file), s3_util.get_s3_key(self.input_file)
        current = s3_util.get_etag(bucket, key)
        if self.file_checksum and current.strip('"') != self.file_checksum:
            self.logger.warning("landing object '%s' changed during the run; not deleting it", self.input_file)
            return
        s3_util.delete_object(bucket, key)
        self._landing_done = True
        self.logger.info("landing object '%s' deleted", self.input_file)

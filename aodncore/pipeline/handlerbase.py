"""``HandlerBase``: the classic driver — one input file through the ordered pipeline state machine.

A handler run is ``initialise → resolve → preprocess → check → process → publish → postprocess``, then
``notify`` and ``complete``. The work of each phase lives in :mod:`aodncore.pipeline.phases` and the step
runners; this class holds the per-run state, the hooks that dataset handlers override, and the error rules.
``run()`` never raises step errors: inspect ``result``, ``error`` and ``error_details``.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from typing import Any

import aodncore
import aodncore.util.workdirs as workdirs
from aodncore.pipeline import phases
from aodncore.pipeline.common import FileType, HandlerResult, PipelineFilePublishType, validate_publishtype
from aodncore.pipeline.configlib import validate_lazyconfigmanager
from aodncore.pipeline.destpath import get_path_function
from aodncore.pipeline.exceptions import (
    HandlerAlreadyRunError,
    InvalidFileFormatError,
    InvalidInputFileError,
    PipelineProcessingError,
)
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, validate_pipelinefile_or_string
from aodncore.pipeline.handlerdescribe import iter_handler_attributes, notification_data
from aodncore.pipeline.handlerstates import (
    ORDERED_STATES,
    ORDERED_TRANSITIONS,
    OTHER_STATES,
    OTHER_TRANSITIONS,
    install_state_methods,
)
from aodncore.pipeline.log import BASIC_LOG_FORMAT, LIBRARY_LOGGERS, SYSINFO, PipelineLoggerAdapter, get_pipeline_logger
from aodncore.pipeline.schema import (
    validate_check_params,
    validate_custom_params,
    validate_harvest_params,
    validate_notify_params,
    validate_resolve_params,
)
from aodncore.pipeline.statemachine import Machine
from aodncore.pipeline.steps.check import get_check_runner
from aodncore.pipeline.steps.harvest import get_harvester_runner
from aodncore.pipeline.steps.notify import get_notify_runner
from aodncore.pipeline.steps.resolve import get_resolve_runner
from aodncore.pipeline.steps.store import get_store_runner
from aodncore.util import ensure_regex_list, ensure_writeonceordereddict, get_file_checksum
from aodncore.util.misc import matches_regexes, validate_relative_path_attr

__all__ = ["HandlerBase"]

FALLBACK_LOG_FORMAT = BASIC_LOG_FORMAT
FALLBACK_LOG_LEVEL = SYSINFO
FALLBACK_LOGGER_NAME = "aodncore.handler"
NO_PIPELINE = "NO_PIPELINE"
NO_TASK = "NO_TASK"

_PARAM_VALIDATORS = (
    ("check_params", validate_check_params),
    ("custom_params", validate_custom_params),
    ("harvest_params", validate_harvest_params),
    ("notify_params", validate_notify_params),
    ("resolve_params", validate_resolve_params),
)


_DEFAULT_ADDITION_TYPE = PipelineFilePublishType.HARVEST_UPLOAD
_DEFAULT_DELETION_TYPE = PipelineFilePublishType.DELETE_UNHARVEST


def _checked_publish_type(publish_type: PipelineFilePublishType) -> PipelineFilePublishType:
    validate_publishtype(publish_type)
    return publish_type


def _read_only(attribute: str, doc: str) -> property:
    """A read-only property returning ``attribute``."""
    return property(lambda self: getattr(self, attribute), doc=doc)


def _converting_property(attribute: str, convert: Callable[[Any], Any], doc: str) -> property:
    """A read/write property stored in ``attribute``; assigned values pass through ``convert`` (which may raise)."""

    def getter(self: Any) -> Any:
        return getattr(self, attribute)

    def setter(self: Any, value: Any) -> None:
        setattr(self, attribute, convert(value))

    return property(getter, setter, doc=doc)


class HandlerBase:
    """Process one input file: resolve it into files, check, publish, notify. Subclass and override the hooks
    ``preprocess``, ``process`` and ``postprocess`` (and ``dest_path``) to implement a dataset pipeline."""

    ordered_states = list(ORDERED_STATES)
    other_states = list(OTHER_STATES)
    all_states = ordered_states + other_states
    ordered_transitions = [dict(t) for t in ORDERED_TRANSITIONS]
    other_transitions = [dict(t) for t in OTHER_TRANSITIONS]
    all_transitions = ordered_transitions + other_transitions

    def __init__(
        self,
        input_file: str,
        allowed_archive_path_regexes: list[str] | None = None,
        allowed_dest_path_regexes: list[str] | None = None,
        allowed_extensions: list[str] | None = None,
        allowed_regexes: list[str] | None = None,
        archive_input_file: bool = False,
        archive_path_function: Callable[[str], str] | str | None = None,
        celery_task: Any = None,
        check_params: dict | None = None,
        config: Any = None,
        custom_params: dict | None = None,
        dest_path_function: Callable[[str], str] | str | None = None,
        error_cleanup_regexes: list[str] | None = None,
        exclude_regexes: list[str] | None = None,
        harvest_params: dict | None = None,
        harvest_type: str | None = "talend",
        include_regexes: list[str] | None = None,
        notify_params: dict | None = None,
        upload_path: str | None = None,
        resolve_params: dict | None = None,
        input_file_copied_to_landing: bool | None = None,
        landing: Any = None,
    ) -> None:
        # every keyword becomes a public attribute of the same name; config and the include/exclude regexes go
        # through their validating/converting property setters
        arguments = {
            "input_file": input_file,
            "allowed_archive_path_regexes": allowed_archive_path_regexes,
            "allowed_dest_path_regexes": allowed_dest_path_regexes,
            "allowed_extensions": allowed_extensions,
            "allowed_regexes": allowed_regexes,
            "archive_input_file": archive_input_file,
            "archive_path_function": archive_path_function,
            "celery_task": celery_task,
            "check_params": check_params,
            "config": config,
            "custom_params": custom_params,
            "dest_path_function": dest_path_function,
            "error_cleanup_regexes": error_cleanup_regexes,
            "exclude_regexes": exclude_regexes,
            "harvest_params": harvest_params,
            "harvest_type": harvest_type,
            "include_regexes": include_regexes,
            "notify_params": notify_params,
            "upload_path": upload_path,
            "resolve_params": resolve_params,
            "input_file_copied_to_landing": input_file_copied_to_landing,
            # where the input was landed (an aodncore.pipeline.steps.manifestpaths.LandingContext, set by the
            # ingest runner): manifests take their allowed roots and relative entries from it
            "landing": landing,
        }
        for name, value in arguments.items():
            setattr(self, name, value)

        self._result = HandlerResult.UNKNOWN
        self._error: BaseException | None = None
        self._error_details: str | None = None
        self._file_collection: PipelineFileCollection | None = None
        self._start_time = datetime.now()
        self._default_addition_publish_type = _DEFAULT_ADDITION_TYPE
        # a file already copied to the landing bucket by the watch side is only harvested when asked to
        if input_file_copied_to_landing and (custom_params or {}).get("harvest_only"):
            self._default_addition_publish_type = PipelineFilePublishType.HARVEST_ONLY
        self._default_deletion_publish_type = _DEFAULT_DELETION_TYPE
        self._notification_results = None
        self._should_notify: list[str] | None = None
        self._handler_run = False
        self._logger: Any = None
        self._instance_working_directory: str | None = None
        self._input_file_archive_path: str | None = None
        self._pipeline_name_override: str | None = None
        self._file_checksum: str | None = None
        self._file_basename: str | None = None
        self._file_extension: str | None = None
        self._file_type: FileType | None = None

        self._machine = Machine(
            model=self,
            states=self.all_states,
            initial="HANDLER_INITIAL",
            transitions=self.all_transitions,
            after_state_change="_after_state_change",
            auto_transitions=False,
        )

    # -- representation ------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every public attribute and property (``dict(handler)``, the ``running handler``
        dump and the notification templates use it)."""
        return iter_handler_attributes(self)

    def __str__(self) -> str:
        return f"{type(self).__name__}({dict(self)})"

    # -- configuration and parameters ------------------------------------------------------------------------------

    @property
    def config(self) -> Any:
        return self._config

    @config.setter
    def config(self, config: Any) -> None:
        validate_lazyconfigmanager(config)
        self._config = config

    include_regexes = _converting_property(
        "_include_regexes", ensure_regex_list, "Compiled regexes selecting the files given a publish type.")
    exclude_regexes = _converting_property(
        "_exclude_regexes", ensure_regex_list, "Compiled regexes excluding files matched by ``include_regexes``.")
    default_addition_publish_type = _converting_property(
        "_default_addition_publish_type", _checked_publish_type, "Publish type given to included additions.")
    default_deletion_publish_type = _converting_property(
        "_default_deletion_publish_type", _checked_publish_type, "Publish type given to included deletions.")

    # -- run state ---------------------------------------------------------------------------------------------------

    result = _read_only("_result", "``HandlerResult`` of the run (``UNKNOWN`` until it ends).")
    error = _read_only("_error", "The exception that ended the run, if any.")
    error_details = _read_only("_error_details", "The error's message (data errors) or traceback (system errors).")
    file_collection = _read_only("_file_collection", "The files the run is working on.")
    notification_results = _read_only("_notification_results", "What the notify step reported.")
    should_notify = _read_only("_should_notify", "Recipients chosen for the outcome of the run.")
    start_time = _read_only("_start_time", "When the handler was created.")
    file_basename = _read_only("_file_basename", "Base name of the input file.")
    file_checksum = _read_only("_file_checksum", "Checksum of the input file.")
    file_extension = _read_only("_file_extension", "Extension of the input file (with the dot).")
    file_type = _read_only("_file_type", "``FileType`` guessed from the input file's extension.")
    instance_working_directory = _read_only("_instance_working_directory", "This run's private working folder.")
    def _working_subdir(self, name: str) -> str | None:
        if self._instance_working_directory is None:
            return None
        return os.path.join(self._instance_working_directory, name)

    @property
    def collection_dir(self) -> str | None:
        return self._working_subdir("collection")

    @property
    def products_dir(self) -> str | None:
        return self._working_subdir("products")

    @property
    def temp_dir(self) -> str | None:
        return self._working_subdir("temp")

    # -- celery / pipeline identity ----------------------------------------------------------------------------------

    @property
    def celery_task_id(self) -> str | None:
        return getattr(getattr(self.celery_task, "request", None), "id", None)

    @property
    def celery_task_name(self) -> str:
        return getattr(self.celery_task, "name", None) or NO_TASK

    @property
    def _pipeline_name(self) -> str:
        if self._pipeline_name_override is not None:
            return self._pipeline_name_override
        return getattr(self.celery_task, "pipeline_name", None) or NO_PIPELINE

    @_pipeline_name.setter
    def _pipeline_name(self, name: str) -> None:
        self._pipeline_name_override = name

    @property
    def input_file_archive_path(self) -> str:
        if self._input_file_archive_path is None:
            self._input_file_archive_path = os.path.join(self._pipeline_name, os.path.basename(self.input_file))
        return self._input_file_archive_path

    @input_file_archive_path.setter
    def input_file_archive_path(self, path: str) -> None:
        validate_relative_path_attr(path, "input_file_archive_path")
        self._input_file_archive_path = path

    # -- lazily built collaborators -------------------------------------------------------------------------------

    @property
    def logger(self) -> Any:
        if self._logger is None:
            self._init_logger()
        return self._logger

    @cached_property
    def input_file_object(self) -> PipelineFile:
        return PipelineFile(self.input_file, file_update_callback=self._file_update_callback)

    @cached_property
    def versions(self) -> dict[str, Any]:
        versions: dict[str, Any] = {"python": platform.python_version(), "aodncore": aodncore.__version__}
        loaded, failed = self.config.discovered_module_versions
        versions.update(loaded)
        versions.update({name: "LOAD_FAILED" for name in failed})
        return versions

    @cached_property
    def state_query(self) -> Any:
        from aodncore.pipeline.statequery import StateQuery
        from aodncore.util.wfs import DEFAULT_WFS_VERSION, WfsBroker

        settings = self.config.pipeline_config["global"]
        wfs_broker = None
        if settings.get("wfs_url"):
            wfs_broker = WfsBroker(settings["wfs_url"], version=settings.get("wfs_version") or DEFAULT_WFS_VERSION)
        upload_broker = self._upload_store_runner.broker
        return StateQuery(storage_broker=upload_broker, wfs_broker=wfs_broker)

    @cached_property
    def _upload_store_runner(self) -> Any:
        return get_store_runner(self.config.pipeline_config["global"]["upload_uri"], self.config, self.logger)

    @cached_property
    def _archive_store_runner(self) -> Any:
        return get_store_runner(
            self.config.pipeline_config["global"]["archive_uri"], self.config, self.logger, archive_mode=True
        )

    # -- public API --------------------------------------------------------------------------------------------------

    def add_to_collection(self, pipeline_file: PipelineFile | str, **kwargs: Any) -> bool:
        """Add a file (object or path) to the handler's collection, wiring the handler's update callback."""
        callback = self._file_update_callback
        validate_pipelinefile_or_string(pipeline_file)
        if not isinstance(pipeline_file, str):
            pipeline_file.file_update_callback = callback
        return self.file_collection.add(pipeline_file, file_update_callback=callback, **kwargs)

    def preprocess(self) -> None:
        """Hook run after resolve, before check. Override in subclasses."""
        self.logger.sysinfo("`preprocess` not overridden by handler, skipping step")

    def process(self) -> None:
        """Hook run after check, before publish. Override in subclasses."""
        self.logger.sysinfo("`process` not overridden by handler, skipping step")

    def postprocess(self) -> None:
        """Hook run after publish. Override in subclasses."""
        self.logger.sysinfo("`postprocess` not overridden by handler, skipping step")

    def run(self) -> None:
        """Run the whole pipeline once. Errors are captured into ``error``/``error_details``, never raised."""
        if self._handler_run:
            raise HandlerAlreadyRunError("handler instance has already been run")
        self._handler_run = True
        try:
            base_dir = self.config.pipeline_config["global"].get("tmp_dir") or tempfile.gettempdir()
            os.makedirs(base_dir, exist_ok=True)
            # tempfile.TemporaryDirectory, or a reused folder where the caller allows it (aodncore.util.workdirs)
            working_directory = workdirs.working_directory(type(self).__name__, base_dir)
        except (Exception, KeyboardInterrupt, SystemExit) as error:  # noqa: BLE001 - reported, never raised
            self._handle_error(error, system_error=True)
            return
        with working_directory as path:
            self._instance_working_directory = path
            try:
                for transition in self.ordered_transitions:
                    self._machine.trigger(transition["trigger"])
            except PipelineProcessingError as error:
                self._handle_error(error)
            except (Exception, KeyboardInterrupt, SystemExit) as error:  # noqa: BLE001
                self._handle_error(error, system_error=True)
            else:
                self._handle_success()

    # -- state machine triggers -----------------------------------------------------------------------------------

    def _after_state_change(self) -> None:
        self.logger.sysinfo("%s transitioned to state: %s", type(self).__name__, self.state)
        if self.celery_task is not None:
            update_state = getattr(self.celery_task, "update_state", None)
            if callable(update_state):
                update_state(state=self.state)

    # -- phases ------------------------------------------------------------------------------------------------------

    def _initialise(self) -> None:
        self.logger.info("running %s on '%s'", type(self).__name__, self.input_file)
        self.logger.sysinfo("running handler -> %s", self)
        self._file_collection = PipelineFileCollection()
        self._validate_and_freeze_params()
        self._set_input_file_attributes()
        self._check_input_file_name()
        self._set_path_functions()
        self._init_working_directory()

    def _validate_and_freeze_params(self) -> None:
        for name, validator in _PARAM_VALIDATORS:
            value = getattr(self, name)
            if value is not None:
                validator(value)
                setattr(self, name, ensure_writeonceordereddict(value))

    def _set_input_file_attributes(self) -> None:
        try:
            checksum = get_file_checksum(self.input_file)
        except OSError as error:
            self.logger.exception("unable to read input file '%s'", self.input_file)
            raise InvalidInputFileError(error) from error
        self._file_checksum = checksum
        self._set_input_file_name_attributes()

    def _set_input_file_name_attributes(self) -> None:
        basename = os.path.basename(self.input_file)
        self._file_basename = basename
        self._file_extension = os.path.splitext(basename)[1]
        self._file_type = FileType.get_type_from_extension(self._file_extension)
        self.logger.sysinfo("get_file_checksum -> '%s'", self._file_checksum)
        self.logger.sysinfo("file_basename -> '%s'", self._file_basename)
        self.logger.sysinfo("file_extension -> '%s'", self._file_extension)
        self.logger.sysinfo("file_type -> %s", self._file_type)

    def _check_input_file_name(self) -> None:
        allowed = self.allowed_extensions
        if allowed and self.file_extension not in allowed:
            raise InvalidFileFormatError(
                f"input file extension '{self.file_extension}' not in allowed_extensions list: {allowed}"
            )
        if self.allowed_regexes and not matches_regexes(self.file_basename, self.allowed_regexes):
            raise InvalidInputFileError(
                f"input file '{self.file_basename}' does not match any patterns in the allowed_regexes list: "
                f"{self.allowed_regexes}"
            )

    def _set_path_functions(self) -> None:
        group = self.config.pipeline_config["pluggable"]["path_function_group"]
        self._dest_path_function_ref, self._dest_path_function_name = get_path_function(self, group)
        self._archive_path_function_ref, self._archive_path_function_name = get_path_function(
            self, group, archive_mode=True
        )
        self.logger.sysinfo("dest_path_function -> '%s'", self._dest_path_function_name)
        self.logger.sysinfo("archive_path_function -> '%s'", self._archive_path_function_name)

    def _init_working_directory(self) -> None:
        for subdir in (self.collection_dir, self.products_dir, self.temp_dir):
            os.makedirs(subdir, exist_ok=True)

    def _resolve(self) -> None:
        runner = get_resolve_runner(self.input_file, self.collection_dir, self.config, self.logger, self.resolve_params,
                                    landing=self._landing_context())
        self._resolve_with(runner)

    def _landing_context(self) -> Any:
        """Where the input was landed (None for a plain path): ``landing`` as given or set before ``run()``."""
        return getattr(self, "landing", None)

    def _resolve_with(self, runner: Any, **run_kwargs: Any) -> None:
        resolved = phases.resolve_files(
            self.input_file,
            self.collection_dir,
            config=self.config,
            logger=self.logger,
            include_regexes=self.include_regexes,
            exclude_regexes=self.exclude_regexes,
            addition_type=self.default_addition_publish_type,
            deletion_type=self.default_deletion_publish_type,
            file_update_callback=self._file_update_callback,
            runner=runner,
            run_kwargs=run_kwargs,
        )
        self.file_collection.update(resolved)

    def _check(self) -> None:
        runner = get_check_runner(self.config, self.logger, self.check_params, work_dir=self.temp_dir)
        phases.check_files(
            self.file_collection, config=self.config, logger=self.logger, check_params=self.check_params, runner=runner
        )

    def _publish(self) -> None:
        self._pre_publish()
        self._archive()
        self._harvest()
        self._store_unharvested()

    def _pre_publish(self) -> None:
        phases.prepare_publish(
            self.file_collection,
            archive_path_function=self._archive_path_function_ref,
            dest_path_function=self._dest_path_function_ref,
            upload_runner=self._upload_store_runner,
            allowed_archive_path_regexes=self.allowed_archive_path_regexes,
            allowed_dest_path_regexes=self.allowed_dest_path_regexes,
        )

    def _archive(self) -> None:
        phases.archive_files(self.file_collection, archive_runner=self._archive_store_runner)
        if self.archive_input_file:
            input_file = self.input_file_object
            if input_file.publish_type is PipelineFilePublishType.UNSET:
                input_file.publish_type = PipelineFilePublishType.ARCHIVE_ONLY
            input_file.archive_path = self.input_file_archive_path
            self._archive_store_runner.run(input_file)

    def _harvest(self) -> None:
        runner = get_harvester_runner(
            self.harvest_type,
            self._upload_store_runner.broker,
            self.harvest_params,
            self.temp_dir,
            self.config,
            self.logger,
        )
        pending = self.file_collection.filter_by_bool_attribute("pending_harvest")
        if pending:
            runner.run(pending)

    def _store_unharvested(self) -> None:
        phases.store_unharvested(self.file_collection, upload_runner=self._upload_store_runner)

    # -- notification and completion ----------------------------------------------------------------------------

    def _notification_data(self) -> dict[str, Any]:
        return notification_data(self)

    def _notify_common(self) -> None:
        # the template data reads every handler property: only build it when somebody is to be notified
        if self.should_notify:
            runner = get_notify_runner(self._notification_data(), self.config, self.logger, self.notify_params)
            self._notification_results = runner.run(self.should_notify)

    def _notify_success(self) -> None:
        self._notify_common()

    def _notify_error(self) -> None:
        self._notify_common()

    def _complete_common(self) -> None:
        self.logger.info("handler result for input_file '%s': %s", self.input_file, self.result.name)

    def _complete_success(self) -> None:
        self._complete_common()

    def _complete_with_errors(self) -> None:
        self._complete_common()

    def _handle_success(self) -> None:
        self._result = HandlerResult.SUCCESS
        self._should_notify = phases.recipients_for_success(self.notify_params)
        try:
            self._machine.trigger("_trigger_notify_success")
            self._machine.trigger("_trigger_complete_success")
        except Exception:  # noqa: BLE001 - notification problems never change the result
            self.logger.exception("error during notification/completion after success")

    def _handle_error(self, error: BaseException, system_error: bool = False) -> None:
        self._error = error
        self._result = HandlerResult.ERROR
        # system errors are logged and reported with their traceback, processing errors as one line
        self._error_details = traceback.format_exc() if system_error else str(error)
        log = self.logger.exception if system_error else self.logger.error
        log("%s: %s", type(error).__name__, error)
        self._should_notify = phases.recipients_for_error(self.notify_params, error, system_error, self.logger)
        try:
            self._machine.trigger("_trigger_notify_error")
            self._machine.trigger("_trigger_complete_with_errors")
        except Exception:  # noqa: BLE001
            self.logger.exception("error during notification/completion after error")

    # -- callbacks and logging --------------------------------------------------------------------------------------

    def _file_update_callback(self, **kwargs: Any) -> None:
        deletion = " (deletion)" if kwargs.get("is_deletion") else ""
        self.logger.sysinfo("updated file '%s'%s: %s", kwargs.get("name"), deletion, kwargs.get("message"))

    def _init_logger(self) -> None:
        task_logger = getattr(self.celery_task, "logger", None)
        if task_logger is not None:
            self._logger = task_logger if hasattr(task_logger, "sysinfo") else PipelineLoggerAdapter(task_logger, {})
        else:
            logging.basicConfig(format=FALLBACK_LOG_FORMAT, level=FALLBACK_LOG_LEVEL)
            self._logger = get_pipeline_logger(
                FALLBACK_LOGGER_NAME,
                extra={"celery_task_id": None, "celery_task_name": NO_TASK, "pipeline_name": NO_PIPELINE},
            )
            self._set_library_log_levels()
            self._logger.warning("no logger parameter or celery task found, falling back to root logger")
        self._celery_task_id = self.celery_task_id
        self._celery_task_name = self.celery_task_name

    def _set_library_log_levels(self) -> None:
        level = self.config.pipeline_config["logging"].get("liblevel", "WARN")
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(level)


install_state_methods(HandlerBase)

"""Harvest step: hand published files to a harvester (Talend jobs, the CSV/PostgreSQL loader, or none at all).

A harvester runner also performs the store upload (additions) or store deletion (deletions) of the files it
harvests, right after each successful harvest, so that a file is never public before its database records exist.

The module globals ``CsvHarvesterRunner``, ``DatabaseInteractions``, ``Geonetwork`` and
``GeonetworkMetadataHandler`` are looked up when they are used, so tests can patch them on this module.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from aodncore.pipeline.db import DatabaseInteractions  # noqa: F401 - patch target, used by csvharvest
from aodncore.pipeline.exceptions import InvalidHarvesterError, UnmappedFilesError
from aodncore.pipeline.files import PipelineFileCollection, validate_pipelinefilecollection
from aodncore.pipeline.geonetwork import Geonetwork, GeonetworkMetadataHandler  # noqa: F401 - patch targets
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.steps.csvharvest import CsvHarvesterRunner
from aodncore.pipeline.steps.harvestbase import BaseHarvesterRunner
from aodncore.util.misc import Validator, format_exception, validate_type
from aodncore.util.process import SystemProcess

__all__ = [
    "create_input_file_list",
    "create_symlink",
    "executor_conversion",
    "get_harvester_runner",
    "HarvesterMap",
    "TalendHarvesterRunner",
    "CsvHarvesterRunner",
    "TriggerEvent",
    "validate_harvestermap",
    "validate_harvester_mapping",
    "validate_triggerevent",
]

TALEND_OUTPUT_START = "--- START TALEND OUTPUT ---"
TALEND_OUTPUT_END = "--- END TALEND OUTPUT ---"
DEFAULT_SLICE_SIZE = 2048


def get_harvester_runner(
    harvester_name: str | None,
    store_runner: Any,
    harvest_params: dict | None,
    tmp_base_dir: str | None,
    config: Any,
    logger: Any,
) -> BaseHarvesterRunner:
    """Return the harvester runner named ``harvester_name``.

    ``store_runner`` is, despite its name, the storage *broker* used to upload/delete harvested files.
    ``None`` selects :class:`NoHarvestRunner` (store only, no database harvest).
    """
    broker = store_runner
    if harvester_name is None:
        return NoHarvestRunner(broker, config, logger)
    if harvester_name == "talend":
        return TalendHarvesterRunner(broker, harvest_params, tmp_base_dir, config, logger)
    if harvester_name == "csv":
        # resolved through the module global at call time (client test suites patch it)
        return CsvHarvesterRunner(broker, harvest_params, config, logger)
    raise InvalidHarvesterError(f"invalid harvester '{harvester_name}'")


# ---------------------------------------------------------------------------------------------------------------------
# helper types


class TriggerEvent:
    """The files matched by one event of a harvester in the trigger config, plus that event's extra parameters."""

    __slots__ = ("_matched_files", "_extra_params")

    def __init__(self, matched_files: PipelineFileCollection, extra_params: str | None = None) -> None:
        validate_pipelinefilecollection(matched_files)
        if extra_params is not None and not isinstance(extra_params, str):
            raise TypeError(f"extra_params must be a string or None, not {type(extra_params).__name__}")
        self._matched_files = matched_files
        self._extra_params = extra_params

    @property
    def matched_files(self) -> PipelineFileCollection:
        return self._matched_files

    @property
    def extra_params(self) -> str | None:
        return self._extra_params

    def __repr__(self) -> str:
        return f"TriggerEvent(matched_files={self._matched_files!r}, extra_params={self._extra_params!r})"


validate_triggerevent: Validator = validate_type(TriggerEvent)


class HarvesterMap:
    """Ordered mapping of harvester name to the list of :class:`TriggerEvent` to run for it.

    Iterating yields ``(harvester_name, events)`` pairs in insertion order.
    """

    def __init__(self) -> None:
        self._map: OrderedDict[str, list[TriggerEvent]] = OrderedDict()

    def __iter__(self) -> Iterator[tuple[str, list[TriggerEvent]]]:
        return iter(self._map.items())

    def __len__(self) -> int:
        return len(self._map)

    def __bool__(self) -> bool:
        return bool(self._map)

    def __repr__(self) -> str:
        return f"HarvesterMap({dict(self._map)!r})"

    @property
    def map(self) -> OrderedDict[str, list[TriggerEvent]]:
        return self._map

    @property
    def all_events(self) -> Iterator[TriggerEvent]:
        """Every event of every harvester, in map order."""
        for events in self._map.values():
            yield from events

    @property
    def all_pipeline_files(self) -> PipelineFileCollection:
        """One collection of every matched file (a file matched by several events appears once)."""
        collection = PipelineFileCollection(validate_unique=False)
        for event in self.all_events:
            for pipeline_file in event.matched_files:
                if pipeline_file not in collection:
                    collection.add(pipeline_file, validate_unique=False)
        return collection

    def add_event(self, harvester: str, event: TriggerEvent) -> None:
        """Append ``event`` to the events of ``harvester``."""
        if not isinstance(harvester, str):
            raise TypeError(f"harvester name must be a string, not {type(harvester).__name__}")
        validate_triggerevent(event)
        self._map.setdefault(harvester, []).append(event)

    def merge(self, other: HarvesterMap) -> None:
        """Merge ``other`` into this map in place: new harvesters are appended, event lists are concatenated."""
        validate_harvestermap(other)
        for harvester, events in other:
            self._map.setdefault(harvester, []).extend(events)

    def set_pipelinefile_bool_attribute(self, attribute: str, value: bool) -> None:
        """Set a boolean attribute on every file of every event."""
        for event in self.all_events:
            event.matched_files.set_bool_attribute(attribute, value)

    def is_collection_superset(self, pipeline_files: PipelineFileCollection) -> bool:
        """True if every file of ``pipeline_files`` is matched by at least one event."""
        return self.all_pipeline_files.issuperset(pipeline_files)


validate_harvestermap: Validator = validate_type(HarvesterMap)


def validate_harvester_mapping(pipeline_files: PipelineFileCollection, harvester_map: HarvesterMap) -> None:
    """Raise :class:`UnmappedFilesError` if any file of ``pipeline_files`` is matched by no harvester event."""
    validate_harvestermap(harvester_map)
    matched = harvester_map.all_pipeline_files
    unmapped = [f.src_path for f in pipeline_files if f not in matched]
    if unmapped:
        raise UnmappedFilesError(f"no matching harvester(s) found for: {unmapped}")


def executor_conversion(executor: str) -> str:
    """Turn the ``=%{name}`` placeholders of a trigger-config command into ``str.format`` fields (``={name}``)."""
    return executor.replace("=%{", "={")


def _check_list_entry(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"refusing to write a path containing a line break to a harvester file list: {value!r}")
    return value


def create_input_file_list(talend_base_dir: str, matched_file_list: Iterable[Any]) -> str:
    """Write the ``dest_path`` of each file (or each string) on its own line in a new ``file_list*.txt``.

    Returns the path of the written list, which is created inside ``talend_base_dir``.
    """
    entries = [
        _check_list_entry(item if isinstance(item, str) else item.dest_path) for item in matched_file_list
    ]
    fd, path = tempfile.mkstemp(prefix="file_list", suffix=".txt", dir=talend_base_dir)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.writelines(f"{entry}{os.linesep}" for entry in entries)
    return path


def _is_within(path: str, base: str) -> bool:
    return os.path.commonpath([path, base]) == base and path != base


def create_symlink(base_dir: str, src_path: str, dest_path: str) -> str:
    """Create the symlink ``<base_dir>/<dest_path>`` pointing at ``src_path`` (parent directories are created).

    ``dest_path`` must be a relative path that stays inside ``base_dir``: absolute paths, paths escaping with
    ``..`` and paths leading through an existing symlink out of ``base_dir`` raise ``ValueError``.
    Returns the path of the link.
    """
    if not dest_path or not isinstance(dest_path, str):
        raise ValueError(f"refusing to create symlink for '{src_path}': dest_path is empty")
    if os.path.isabs(dest_path):
        raise ValueError(f"refusing to create symlink for '{src_path}': dest_path '{dest_path}' is absolute")
    real_base = os.path.realpath(base_dir)
    link_path = os.path.normpath(os.path.join(real_base, dest_path))
    if not _is_within(link_path, real_base):
        raise ValueError(
            f"refusing to create symlink for '{src_path}': dest_path '{dest_path}' escapes the harvester base dir"
        )
    parent = os.path.dirname(link_path)
    os.makedirs(parent, exist_ok=True)
    real_parent = os.path.realpath(parent)
    if real_parent != real_base and not _is_within(real_parent, real_base):
        raise ValueError(
            f"refusing to create symlink for '{src_path}': dest_path '{dest_path}' leads out of the harvester base dir"
        )
    os.symlink(src_path, link_path)
    return link_path


# ---------------------------------------------------------------------------------------------------------------------
# runners


class TalendHarvesterRunner(BaseHarvesterRunner):
    """Run the shell commands configured in ``config.trigger_config`` (Talend jobs) for the files to harvest.

    For each slice of files, every harvester/event whose regexes match a file's ``dest_path`` runs once with a
    temporary base directory holding ``<dest_path>`` symlinks to the files (additions) or no files at all
    (deletions: Talend reads an absent file as "remove it"). After each successful addition event the event's files
    are uploaded; after each deletion event they are deleted from the store. A failing addition event un-harvests
    (and removes from the store) the failing slice and, with ``undo_previous_slices`` (default), every slice
    harvested earlier by this runner.
    """

    def __init__(
        self,
        storage_broker: Any,
        harvest_params: dict | None,
        tmp_base_dir: str | None,
        config: Any,
        logger: Any,
        deletion: bool = False,
    ) -> None:
        super().__init__(storage_broker, harvest_params, config, logger)
        self.deletion = deletion
        self.tmp_base_dir = tmp_base_dir
        self.slice_size = self.params.get("slice_size", DEFAULT_SLICE_SIZE)
        self.undo_previous_slices = self.params.get("undo_previous_slices", True)
        self.harvested_file_map: HarvesterMap = HarvesterMap()

    # -- configuration --------------------------------------------------------------------------------------------

    @property
    def _trigger_config(self) -> dict:
        return self._config.trigger_config

    def _get_executor(self, harvester: str, event: TriggerEvent) -> str:
        executor = self._trigger_config[harvester]["exec"]
        if event.extra_params:
            executor = f"{executor} {event.extra_params}"
        return executor

    # -- main entry point -----------------------------------------------------------------------------------------

    def run(self, pipeline_files: PipelineFileCollection) -> None:
        """Harvest ``pipeline_files``: early deletions, then additions, then late deletions, slice by slice."""
        validate_pipelinefilecollection(pipeline_files)
        early_deletions = pipeline_files.filter_by_bool_attribute("pending_harvest_early_deletion")
        additions = pipeline_files.filter_by_bool_attribute("pending_harvest_addition")
        late_deletions = pipeline_files.filter_by_bool_attribute("pending_harvest_late_deletion")
        self.logger.log(SYSINFO, "harvesting in slices of at most %s file(s)", self.slice_size)

        for group, is_deletion in ((early_deletions, True), (additions, False), (late_deletions, True)):
            for file_slice in group.get_slices(self.slice_size):
                harvester_map = self.match_harvester_to_files(file_slice)
                validate_harvester_mapping(file_slice, harvester_map)
                if is_deletion:
                    self.run_deletions(harvester_map, self.tmp_base_dir)
                else:
                    self.run_additions(harvester_map, self.tmp_base_dir)

    def match_harvester_to_files(self, pipeline_files: PipelineFileCollection) -> HarvesterMap:
        """Map each harvester/event of the trigger config (in config order) to the files its regexes match."""
        harvester_map = HarvesterMap()
        for harvester, harvester_config in self._trigger_config.items():
            for event_config in harvester_config["events"]:
                matched = pipeline_files.filter_by_attribute_regexes("dest_path", event_config["regex"])
                if not matched:
                    continue
                event = TriggerEvent(matched, event_config.get("extra_params"))
                harvester_map.add_event(harvester, event)
                self.logger.log(
                    SYSINFO,
                    "harvester '%s' matched %s file(s): %s",
                    harvester,
                    len(matched),
                    matched.get_attribute_list("dest_path"),
                )
        return harvester_map

    # -- command execution ----------------------------------------------------------------------------------------

    def execute_talend(
        self,
        executor: str,
        pipeline_files: PipelineFileCollection,
        talend_base_dir: str,
        success_attribute: str = "is_harvested",
    ) -> None:
        """Run one harvester command for ``pipeline_files`` and set ``success_attribute`` on them if it succeeds."""
        file_list = create_input_file_list(talend_base_dir, pipeline_files)
        log_dir = self._config.pipeline_config["talend"]["talend_log_dir"]
        command = executor_conversion(executor).format(base=talend_base_dir, file_list=file_list, log_dir=log_dir)
        process = SystemProcess(command, shell=True)
        # the command itself is not logged: trigger-config commands may carry credentials
        self.logger.log(SYSINFO, "running harvester command for %s file(s)", len(pipeline_files))
        try:
            process.execute()
        except Exception as exc:
            self._log_talend_output(process.stdout_text or format_exception(exc), logging.ERROR)
            raise
        self._log_talend_output(process.stdout_text, logging.INFO)
        pipeline_files.set_bool_attribute(attribute=success_attribute, value=True)

    def _log_talend_output(self, output: str, level: int) -> None:
        """Log the command output at ``level`` between the start/end marker lines."""
        self.logger.info(TALEND_OUTPUT_START)
        self.logger.log(level, output)
        self.logger.info(TALEND_OUTPUT_END)

    def _new_base_dir(self, tmp_base_dir: str | None) -> tempfile.TemporaryDirectory:
        return tempfile.TemporaryDirectory(prefix="talend_base", dir=tmp_base_dir)

    # -- deletions ------------------------------------------------------------------------------------------------

    def run_deletions(self, harvester_map: HarvesterMap, tmp_base_dir: str | None) -> None:
        """Run each event without symlinks (un-harvest), then delete its files from the store."""
        for harvester, events in harvester_map:
            for event in events:
                with self._new_base_dir(tmp_base_dir) as talend_base_dir:
                    self.execute_talend(self._get_executor(harvester, event), event.matched_files, talend_base_dir)
                to_delete = event.matched_files.filter_by_bool_attribute("pending_store_deletion")
                if to_delete:
                    self.storage_broker.delete(to_delete)

    # -- additions ------------------------------------------------------------------------------------------------

    def run_additions(self, harvester_map: HarvesterMap, tmp_base_dir: str | None) -> None:
        """Run each event with ``<dest_path>`` symlinks, then upload its files; undo everything on failure."""
        slice_map = HarvesterMap()
        for harvester, events in harvester_map:
            for event in events:
                try:
                    with self._new_base_dir(tmp_base_dir) as talend_base_dir:
                        for pipeline_file in event.matched_files:
                            create_symlink(talend_base_dir, pipeline_file.src_path, pipeline_file.dest_path)
                        self.execute_talend(self._get_executor(harvester, event), event.matched_files,
                                            talend_base_dir)
                except Exception:
                    undo_map = HarvesterMap()
                    undo_map.add_event(harvester, event)
                    # events of this slice that already succeeded are undone too (they are also recorded in
                    # harvested_file_map, which holds every earlier slice)
                    undo_map.merge(self.harvested_file_map if self.undo_previous_slices else slice_map)
                    try:
                        self.undo_processed_files(undo_map)
                    except Exception as undo_exc:
                        self.logger.error("undoing the harvest failed: %s", format_exception(undo_exc))
                    raise
                for succeeded in (slice_map, self.harvested_file_map):
                    succeeded.add_event(harvester, event)
                to_upload = event.matched_files.filter_by_bool_attribute("pending_store_addition")
                if to_upload:
                    self.storage_broker.upload(to_upload)

    # -- undo -----------------------------------------------------------------------------------------------------

    def undo_processed_files(self, undo_map: HarvesterMap) -> None:
        """Flag every file of ``undo_map`` for undo, un-harvest them and delete the uploaded ones."""
        undo_map.set_pipelinefile_bool_attribute("should_undo", True)
        self.run_undo_deletions(undo_map)

    def run_undo_deletions(self, undo_map: HarvesterMap) -> None:
        """Un-harvest each event's files (command run without symlinks) and delete the ones already uploaded.

        Every event is attempted; if any un-harvest fails, its files stay in the store (their records may still be
        in the database) and the first error is raised after the others were processed.
        """
        first_error: Exception | None = None
        for harvester, events in undo_map:
            for event in events:
                try:
                    with self._new_base_dir(self.tmp_base_dir) as talend_base_dir:
                        self.execute_talend(self._get_executor(harvester, event), event.matched_files,
                                            talend_base_dir, success_attribute="is_harvest_undone")
                except Exception as exc:
                    first_error = first_error or exc
                    continue
                to_delete = event.matched_files.filter_by_bool_attributes_and("pending_undo", "is_stored")
                if to_delete:
                    self.storage_broker.delete(to_delete, is_stored_attr="is_upload_undone")
        if first_error is not None:
            raise first_error


class NoHarvestRunner(BaseHarvesterRunner):
    """Store-only runner used when no harvester is configured (``harvest_type=None``).

    Behaviour, chosen to be honest about what happened:

    * files ``pending_store_addition`` are uploaded and files ``pending_store_deletion`` are deleted from the store
      (order: early deletions, additions, late deletions — as with a real harvester); all of them are recorded in
      :attr:`stored_files` and get ``is_stored=True`` from the broker;
    * the harvest part of a publish type (``HARVEST_ONLY``, ``UNHARVEST_ONLY``, the harvest flag of
      ``HARVEST_UPLOAD``/``HARVEST_ARCHIVE``/``HARVEST_ARCHIVE_UPLOAD``/``DELETE_UNHARVEST``) cannot be carried out:
      those files keep ``is_harvested=False``, are collected in :attr:`skipped_harvest_files`, and one warning per
      run lists them. Consequently ``published`` reports ``'No'`` for files that needed both a store action and a
      harvest (e.g. ``HARVEST_UPLOAD``) and for harvest-only files, which is the truth.
    """

    def __init__(self, storage_broker: Any, config: Any, logger: Any) -> None:
        super().__init__(storage_broker, None, config, logger)
        self.stored_files = PipelineFileCollection(validate_unique=False)
        self.skipped_harvest_files = PipelineFileCollection(validate_unique=False)

    @staticmethod
    def _record(target: PipelineFileCollection, pipeline_files: Iterable[Any]) -> None:
        for pipeline_file in pipeline_files:
            if pipeline_file not in target:
                target.add(pipeline_file, validate_unique=False)

    def run(self, pipeline_files: PipelineFileCollection) -> None:
        """Store/delete what needs storing; report (and leave pending) the harvest actions that cannot be done."""
        validate_pipelinefilecollection(pipeline_files)
        skipped = pipeline_files.filter_by_bool_attribute("pending_harvest")

        early_deletions = pipeline_files.filter_by_bool_attributes_and_not("pending_store_deletion", "late_deletion")
        additions = pipeline_files.filter_by_bool_attribute("pending_store_addition")
        late_deletions = pipeline_files.filter_by_bool_attributes_and("pending_store_deletion", "late_deletion")
        if early_deletions:
            self.storage_broker.delete(early_deletions)
            self._record(self.stored_files, early_deletions)
        if additions:
            self.storage_broker.upload(additions)
            self._record(self.stored_files, additions)
        if late_deletions:
            self.storage_broker.delete(late_deletions)
            self._record(self.stored_files, late_deletions)

        if skipped:
            self._record(self.skipped_harvest_files, skipped)
            self.logger.warning(
                "no harvester configured: harvest skipped for %s file(s) (is_harvested left False): %s",
                len(skipped),
                [f"{f.name} ({f.publish_type.name})" for f in skipped],
            )

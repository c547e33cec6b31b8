"""``CsvHarvesterRunner``: load CSV files into PostgreSQL tables, refresh what depends on them, update GeoNetwork.

The classes it builds (``DatabaseInteractions``, ``Geonetwork``, ``GeonetworkMetadataHandler``) are looked up at
call time on :mod:`aodncore.pipeline.steps.harvest`, the module client test suites patch them on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aodncore.pipeline.exceptions import (
    InvalidConfigError,
    InvalidHarvesterError,
    InvalidSQLConnectionError,
    InvalidSQLTransactionError,
    MissingConfigFileError,
    MissingConfigParameterError,
    UnexpectedCsvFilesError,
)
from aodncore.pipeline.files import PipelineFileCollection, validate_pipelinefilecollection
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.steps.harvestbase import BaseHarvesterRunner
from aodncore.util.misc import format_exception

__all__ = ["CsvHarvesterRunner"]

#: database failures that abort a CSV harvest even where other errors are only logged
_DATABASE_ERRORS = (InvalidSQLConnectionError, InvalidSQLTransactionError)
_PATCH_MODULE = "aodncore.pipeline.steps.harvest"


def _patchable(name: str) -> Any:
    """``name`` as currently bound on :mod:`aodncore.pipeline.steps.harvest` (where tests patch it)."""
    module = sys.modules.get(_PATCH_MODULE)
    if module is None:
        import importlib

        module = importlib.import_module(_PATCH_MODULE)
    return getattr(module, name)


def _plain(value: Any) -> Any:
    """A deep copy made of plain ``dict``/``list`` objects (configuration arrives as ``WriteOnceOrderedDict``)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class CsvHarvesterRunner(BaseHarvesterRunner):
    """Load CSV files into PostgreSQL tables (``harvest_params['db_objects']``) and refresh dependent objects.

    ``db_objects`` holds plain-``dict`` copies of the configured objects (the configuration, often write-once
    mappings from ``load_json_file``, is never modified), each with its ``dependencies`` expanded to every direct
    and indirect dependency, in configuration order. A dependency naming no configured object, and a dependency
    cycle, are refused with :class:`InvalidHarvesterError` at construction.

    Deletions are refused with :class:`InvalidHarvesterError`: this harvester can only load data, and treating a
    deletion as a load would silently re-load (or crash on) data meant to be removed.
    """

    def __init__(self, storage_broker: Any, harvest_params: dict | None, config: Any, logger: Any) -> None:
        super().__init__(storage_broker, harvest_params, config, logger)
        self.db_objects_raw = self.params.get("db_objects")
        self.db_objects = (
            [self.build_dependency_tree(obj) for obj in self.db_objects_raw] if self.db_objects_raw else None
        )

    @property
    def db_schema(self) -> str | None:
        return self.params.get("db_schema")

    def build_dependency_tree(self, db_object: Mapping[str, Any]) -> dict:
        """A plain-``dict`` copy of ``db_object`` whose ``dependencies`` list every direct and indirect dependency
        once, in the order of ``db_objects`` (names compared exactly).

        :raises InvalidHarvesterError: for a dependency naming no db object, or a dependency cycle
        """
        result = dict(db_object)
        if not db_object.get("dependencies"):
            return result
        raw = list(self.db_objects_raw or [])
        by_name = {obj["name"]: obj for obj in raw}
        order = {obj["name"]: index for index, obj in enumerate(raw)}
        found: set[str] = set()

        def visit(name: str, path: list[str]) -> None:
            for dependency in by_name.get(name, db_object).get("dependencies") or ():
                if dependency in path:
                    cycle = " -> ".join([*path[path.index(dependency):], dependency])
                    raise InvalidHarvesterError(f"db_objects dependency cycle: {cycle}")
                if dependency not in by_name:
                    raise InvalidHarvesterError(
                        f"db object '{name}' depends on '{dependency}', which is not one of the db_objects"
                    )
                if dependency not in found:
                    found.add(dependency)
                    visit(dependency, [*path, dependency])

        visit(db_object["name"], [db_object["name"]])
        result["dependencies"] = sorted(found, key=order.__getitem__)
        return result

    def build_runsheet(self, pipeline_file: Any) -> bool:
        """Flag the db objects to process for ``pipeline_file`` (matched by its file stem) and return True.

        The table of the same name (case-insensitive) gets ``include`` and the file's ``local_path``; every object
        depending on it gets ``include``. A file matching no table is recorded (by local path) in
        ``unexpected_pipeline_files``.
        """
        stem = Path(pipeline_file.local_path).stem.lower()
        matched_table = False
        for obj in self.db_objects:
            if obj["name"].lower() == stem and obj["type"] == "table":
                obj["include"] = True
                obj["local_path"] = pipeline_file.local_path
                matched_table = True
            elif stem in (obj.get("dependencies") or ()):
                obj["include"] = True
        if not matched_table:
            self.unexpected_pipeline_files.append(pipeline_file.local_path)
        return True

    def get_config_file(self, filename: str) -> dict:
        """JSON content of ``<harvester.config_dir>/<db_schema>/<filename>``."""
        path = os.path.join(self._config.pipeline_config["harvester"]["config_dir"], self.db_schema or "", filename)
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise MissingConfigFileError(f"harvester config file '{path}' not found") from None

    def get_process_sequence(self, conn: Any) -> list[str]:
        """Names of the ``DatabaseInteractions`` methods to run for each runsheet step, by ``ingest_type``
        (``replace`` whenever ``conn.compare_schemas()`` is false)."""
        ingest_type = self.params.get("ingest_type", "replace") if conn.compare_schemas() else "replace"
        sequences = {
            "replace": ["drop_object", "create_table_from_yaml_file", "load_data_from_csv", "execute_sql_file"],
            "truncate": ["truncate_table", "load_data_from_csv", "refresh_materialized_view"],
            "append": ["load_data_from_csv", "refresh_materialized_view"],
        }
        if ingest_type not in sequences:
            raise InvalidConfigError(f"No implementation for {ingest_type} ingest_type")
        self.logger.info("Using process sequence `%s`", ingest_type)
        return list(sequences[ingest_type])

    def _new_db_context(self) -> Any:
        # DatabaseInteractions is resolved through the module global at call time (tests patch it)
        return _patchable("DatabaseInteractions")(
            config=self.get_config_file("database.json"),
            schema_base_path=self._config.pipeline_config["harvester"]["schema_base_dir"],
            logger=self.logger,
        )

    def run(self, pipeline_files: PipelineFileCollection) -> None:
        """Load the CSV files, refresh their dependants, upload them and update GeoNetwork extents if configured."""
        validate_pipelinefilecollection(pipeline_files)
        if not self.db_objects:
            raise MissingConfigParameterError(
                'Generic CSV Harvester requires that the harvest_params["db_objects"] attribute be set'
            )
        deletions = [f.src_path for f in pipeline_files if f.is_deletion]
        if deletions:
            raise InvalidHarvesterError(
                f"the csv harvester cannot un-harvest deletions; route these files to another harvester: {deletions}"
            )

        for obj in self.db_objects:  # our own copies: a second run starts afresh
            obj.pop("include", None)
            obj.pop("local_path", None)
        self.unexpected_pipeline_files = []
        for pipeline_file in pipeline_files:
            self.build_runsheet(pipeline_file)
        if self.unexpected_pipeline_files:
            raise UnexpectedCsvFilesError(f"No db_objects match these pipeline files: {self.unexpected_pipeline_files}")

        runsheet = [obj for obj in self.db_objects if obj.get("include")]
        self.logger.log(SYSINFO, "csv harvest runsheet: %s", [obj["name"] for obj in runsheet])
        with self._new_db_context() as conn:
            process_sequence = self.get_process_sequence(conn)
            for step in runsheet:
                self.logger.info("Executing steps for %s", step["name"])
                for task in process_sequence:
                    getattr(conn, task)(step)

        to_upload = pipeline_files.filter_by_bool_attribute("pending_store_addition")
        if to_upload:
            self.storage_broker.upload(pipeline_files=to_upload)
        pipeline_files.set_bool_attribute("is_harvested", True)

        if self.params.get("metadata_updates"):
            self._update_metadata()

    def _update_metadata(self) -> None:
        """Update every configured GeoNetwork record in one database transaction.

        Database connection/transaction errors fail the harvest; any other error is logged as a warning and the
        remaining updates are skipped (the data is already loaded and published).
        """
        try:
            metadata_config = self.get_config_file("metadata.json")
            session = _patchable("Geonetwork")(
                metadata_config["metadata_url"],
                metadata_config["metadata_username"],
                metadata_config["metadata_password"],
            )
            with self._new_db_context() as conn:
                for update in self.params["metadata_updates"]:
                    metadata = _plain(update)
                    if metadata.get("spatial"):
                        metadata["spatial"]["db_schema"] = self.db_schema
                    _patchable("GeonetworkMetadataHandler")(conn, session, metadata, self.logger).run()
        except _DATABASE_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - metadata is best effort once the data is published
            self.logger.warning("metadata update skipped: %s", format_exception(exc))

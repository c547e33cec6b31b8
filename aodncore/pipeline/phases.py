"""The handler phases as plain functions over a ``PipelineFileCollection``.

Both drivers use these: ``HandlerBase`` calls them from its state machine callbacks, and the Prefect tasks call
them directly. Every input is explicit (collection, config, params, logger, directories); nothing here reaches
into a handler instance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aodncore.pipeline.common import PipelineFileCheckType, PipelineFilePublishType
from aodncore.pipeline.exceptions import (
    AttributeValidationError,
    DuplicateDestinationError,
    InvalidConfigError,
    MissingConfigParameterError,
    UnmatchedFilesError,
)
from aodncore.pipeline.files import PipelineFileCollection

__all__ = [
    "MATCH_ALL",
    "archive_files",
    "check_files",
    "harvest_files",
    "prepare_publish",
    "publish_files",
    "recipients_for_error",
    "recipients_for_success",
    "resolve_files",
    "store_unharvested",
]

MATCH_ALL = [re.compile(".*")]


def resolve_files(
    input_file: str,
    output_dir: str,
    *,
    config: Any,
    logger: Any,
    resolve_params: Mapping[str, Any] | None = None,
    include_regexes: Sequence[re.Pattern] | None = None,
    exclude_regexes: Sequence[re.Pattern] | None = None,
    addition_type: PipelineFilePublishType = PipelineFilePublishType.HARVEST_UPLOAD,
    deletion_type: PipelineFilePublishType = PipelineFilePublishType.DELETE_UNHARVEST,
    file_update_callback: Callable[..., Any] | None = None,
    runner: Any = None,
    run_kwargs: Mapping[str, Any] | None = None,
    landing: Any = None,
) -> PipelineFileCollection:
    """Turn ``input_file`` into a collection and give matching files their default publish types.

    Files whose *name* matches no include regex (default: everything) or matches an exclude regex keep
    ``publish_type`` ``UNSET``; unless a later hook sets one, publishing refuses them. ``landing`` (a
    ``LandingContext``) says where the input was landed, for manifests (allowed roots, relative entries).
    """
    if runner is None:
        from aodncore.pipeline.steps.resolve import get_resolve_runner

        runner = get_resolve_runner(input_file, output_dir, config, logger, resolve_params, landing=landing)
    resolved = runner.run(**(run_kwargs or {}))
    if file_update_callback is not None:
        resolved.set_file_update_callback(file_update_callback)
    resolved.set_publish_types_from_regexes(
        include_regexes or MATCH_ALL, exclude_regexes or [], addition_type, deletion_type
    )
    return resolved


def check_files(
    collection: PipelineFileCollection,
    *,
    config: Any,
    logger: Any,
    check_params: Mapping[str, Any] | None = None,
    runner: Any = None,
) -> None:
    """Give unchecked files their default check type, then check every file not marked ``NO_ACTION``.

    Raises ``ComplianceCheckFailedError`` if any file fails.
    """
    if runner is None:
        from aodncore.pipeline.steps.check import get_check_runner

        runner = get_check_runner(config, logger, check_params)
    collection.filter_by_attribute_id("check_type", PipelineFileCheckType.UNSET).set_default_check_types(check_params)
    to_check = collection.filter_by_attribute_id_not("check_type", PipelineFileCheckType.NO_ACTION)
    if to_check:
        runner.run(to_check)


def _validate_paths_match(files: PipelineFileCollection, attribute: str, regexes: Iterable[Any] | None) -> None:
    if regexes:
        files.validate_attribute_value_matches_regexes(attribute, regexes)


def _assign_unique_paths(collection: PipelineFileCollection, attribute: str, assign: Callable[[], None]) -> None:
    """Set ``attribute`` on the files and require every value to be unique.

    Two files mapping to one destination (e.g. zip members ``a/x.nc`` and ``b/x.nc``) is a property of the data,
    which no retry changes: :class:`DuplicateDestinationError`, a data error (still an ``AttributeValidationError``).
    """
    try:
        assign()
        collection.validate_attribute_uniqueness(attribute)
    except AttributeValidationError as error:
        raise DuplicateDestinationError(f"two of the files would be published to the same {attribute}: {error}") \
            from error


def prepare_publish(
    collection: PipelineFileCollection,
    *,
    archive_path_function: Callable[[str], str],
    dest_path_function: Callable[[str], str],
    upload_runner: Any,
    allowed_archive_path_regexes: Iterable[Any] | None = None,
    allowed_dest_path_regexes: Iterable[Any] | None = None,
) -> None:
    """Validate publish types, compute and validate archive/destination paths and record overwrites."""
    unmatched = collection.filter_by_attribute_id("publish_type", PipelineFilePublishType.UNSET)
    unmatched = unmatched.filter_by_bool_attribute_not("is_deletion")
    if unmatched:
        raise UnmatchedFilesError(f"files with UNSET publish_type found: '{unmatched.get_attribute_list('src_path')}'")

    _assign_unique_paths(collection, "archive_path", lambda: collection.set_archive_paths(archive_path_function))
    _validate_paths_match(
        collection.filter_by_bool_attribute("pending_archive"), "archive_path", allowed_archive_path_regexes
    )

    _assign_unique_paths(collection, "dest_path", lambda: collection.set_dest_paths(dest_path_function))
    _validate_paths_match(
        collection.filter_by_bool_attributes_or("pending_store", "pending_harvest"),
        "dest_path",
        allowed_dest_path_regexes,
    )

    upload_runner.set_is_overwrite(collection)


def archive_files(collection: PipelineFileCollection, *, archive_runner: Any) -> PipelineFileCollection:
    """Copy every file pending archive to the archive store; returns the archived files."""
    pending = collection.filter_by_bool_attribute("pending_archive")
    if pending:
        archive_runner.run(pending)
    return pending


def harvest_files(
    collection: PipelineFileCollection,
    *,
    harvest_type: str | None,
    upload_broker: Any,
    harvest_params: Mapping[str, Any] | None,
    temp_dir: str,
    config: Any,
    logger: Any,
) -> PipelineFileCollection:
    """Run the harvester on files pending harvest (the harvester also stores what it harvests)."""
    from aodncore.pipeline.steps.harvest import get_harvester_runner

    runner = get_harvester_runner(harvest_type, upload_broker, harvest_params, temp_dir, config, logger)
    pending = collection.filter_by_bool_attribute("pending_harvest")
    if pending:
        runner.run(pending)
    return pending


def store_unharvested(collection: PipelineFileCollection, *, upload_runner: Any) -> PipelineFileCollection:
    """Upload/delete whatever is still pending in the public store, and remove files marked for undo."""
    pending = collection.filter_by_bool_attributes_or("pending_store", "pending_undo")
    if pending:
        upload_runner.run(pending)
    return pending


def publish_files(
    collection: PipelineFileCollection,
    *,
    archive_path_function: Callable[[str], str],
    dest_path_function: Callable[[str], str],
    upload_runner: Any,
    archive_runner: Any,
    harvest_type: str | None,
    harvest_params: Mapping[str, Any] | None,
    temp_dir: str,
    config: Any,
    logger: Any,
    allowed_archive_path_regexes: Iterable[Any] | None = None,
    allowed_dest_path_regexes: Iterable[Any] | None = None,
) -> None:
    """Prepare, archive, harvest and store a collection, in that order."""
    prepare_publish(
        collection,
        archive_path_function=archive_path_function,
        dest_path_function=dest_path_function,
        upload_runner=upload_runner,
        allowed_archive_path_regexes=allowed_archive_path_regexes,
        allowed_dest_path_regexes=allowed_dest_path_regexes,
    )
    archive_files(collection, archive_runner=archive_runner)
    harvest_files(
        collection,
        harvest_type=harvest_type,
        upload_broker=upload_runner.broker,
        harvest_params=harvest_params,
        temp_dir=temp_dir,
        config=config,
        logger=logger,
    )
    store_unharvested(collection, upload_runner=upload_runner)


def _as_params(notify_params: Any) -> Mapping[str, Any]:
    # notify params are validated inside the run; when that validation is what failed, they may be anything
    return notify_params if isinstance(notify_params, Mapping) else {}


def _recipient_list(params: Mapping[str, Any], key: str) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list | tuple):
        return []
    return [recipient for recipient in value if isinstance(recipient, str)]


def recipients_for_success(notify_params: Mapping[str, Any] | None) -> list[str]:
    """Who hears about a successful run: the success list, plus owners if ``notify_owner_success``."""
    params = _as_params(notify_params)
    recipients = _recipient_list(params, "success_notify_list")
    if params.get("notify_owner_success") is True:
        recipients.extend(_recipient_list(params, "owner_notify_list"))
    return recipients


def recipients_for_error(
    notify_params: Mapping[str, Any] | None, error: BaseException, system_error: bool, logger: Any = None
) -> list[str]:
    """Who hears about a failed run.

    User (data) errors go to the error list, plus owners if ``notify_owner_error``. System errors always go to
    the owners only — except configuration errors, which notify nobody. Malformed notify params (possible when
    their own validation is the error being reported) contribute no recipients.
    """
    params = _as_params(notify_params)
    if not system_error:
        recipients = _recipient_list(params, "error_notify_list")
        if params.get("notify_owner_error") is True:
            recipients.extend(_recipient_list(params, "owner_notify_list"))
        return recipients
    if params.get("error_notify_list") and logger is not None:
        logger.warning("system error: error_notify_list is not notified, only owner_notify_list")
    if isinstance(error, InvalidConfigError | MissingConfigParameterError):
        return []
    return _recipient_list(params, "owner_notify_list")

"""Behavioural tests of the classic driver ``HandlerBase`` (spec §5, §17, §18), with real files, real stores
(local directories), the real talend ``echo`` harvester of the test config, the real compliance checker and a real
SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
import functools
import json
import os
import re
import socket
import traceback
from types import SimpleNamespace

import jsonschema
import pytest
from aiosmtpd.controller import Controller

from aodncore.pipeline import HandlerBase, PipelineFile, PipelineFileCollection
from aodncore.pipeline.common import (
    FileType,
    HandlerResult,
    PipelineFileCheckType,
    PipelineFilePublishType,
)
from aodncore.pipeline.configlib import LazyConfigManager
from aodncore.pipeline.exceptions import (
    AttributeValidationError,
    ComplianceCheckFailedError,
    HandlerAlreadyRunError,
    InvalidConfigError,
    InvalidFileContentError,
    InvalidFileFormatError,
    InvalidHarvesterError,
    InvalidInputFileError,
    InvalidPathFunctionError,
    MissingConfigParameterError,
    UnmatchedFilesError,
)
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.storage import LocalFileStorageBroker
from aodncore.testlib import DummyHandler, dest_path_testing, get_test_config, make_test_file, make_zip
from aodncore.testlib.testutil import (
    GLOBAL_TEST_BASE,
    TESTLIB_CONF_DIR,
    load_runtime_patched_pipeline_config_file,
)
from aodncore.util import WriteOnceOrderedDict

GOOD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
BAD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"
PUBLISH = PipelineFilePublishType
CHECK = PipelineFileCheckType

ORDERED_STATES = [
    "HANDLER_INITIAL",
    "HANDLER_INITIALISED",
    "HANDLER_RESOLVED",
    "HANDLER_PREPROCESSED",
    "HANDLER_CHECKED",
    "HANDLER_PROCESSED",
    "HANDLER_PUBLISHED",
    "HANDLER_POSTPROCESSED",
]
OTHER_STATES = [
    "HANDLER_NOTIFIED_SUCCESS",
    "HANDLER_NOTIFIED_ERROR",
    "HANDLER_COMPLETED_SUCCESS",
    "HANDLER_COMPLETED_ERROR",
]

OWNERS = ["email:owner1@example.com", "email:owner2@example.com"]
SUCCESS_LIST = ["email:success@example.com"]
ERROR_LIST = ["email:uploader@example.com", "email:uploader2@example.com"]


# -- fixtures and helpers ---------------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def make_config(temp_dir, **global_overrides) -> LazyConfigManager:
    """The test configuration, with the archive store in ``temp_dir`` (and any other ``global`` overrides)."""
    os.makedirs(str(temp_dir), exist_ok=True)
    config = get_test_config(str(temp_dir))
    global_section = _plain(config.pipeline_config["global"])
    archive_dir = os.path.join(str(temp_dir), "archive")
    os.makedirs(archive_dir, exist_ok=True)
    global_section["archive_uri"] = f"file://{archive_dir}"
    global_section.update(global_overrides)
    config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"),
        GLOBAL_TEST_BASE,
        str(temp_dir),
        additional_patch={"global": global_section},
    )
    return config


def store_dir(config, uri_key: str) -> str:
    uri = config.pipeline_config["global"][uri_key]
    assert uri.startswith("file://")
    return uri[len("file://"):]


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "cfg")


@pytest.fixture
def empty_nc(tmp_path):
    """An attribute-less (but valid) NetCDF file."""
    path = str(tmp_path / "empty_file.nc")
    make_test_file(path)
    return path


@pytest.fixture
def good_nc(imos_file):
    return str(imos_file(GOOD_NC))


@pytest.fixture
def good_and_bad_zip(imos_file):
    return str(imos_file("good_and_bad.zip"))


def raise_(error: BaseException):
    """A hook (called with no arguments) that raises ``error``."""

    def hook():
        raise error

    return hook


def record_states(handler) -> list[str]:
    """Record every state the handler enters (``_after_state_change`` is looked up on the instance)."""
    states: list[str] = []
    original = handler._after_state_change

    def recorder():
        states.append(handler.state)
        original()

    handler._after_state_change = recorder
    return states


def upload_only_handler(path, config, **kwargs):
    handler = HandlerBase(path, config=config, dest_path_function=dest_path_testing, **kwargs)
    handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
    return handler


# -- constructor ------------------------------------------------------------------------------------------------------


class TestConstructor:
    def test_unknown_keyword_is_a_type_error(self, config, empty_nc):
        with pytest.raises(TypeError):
            HandlerBase(empty_nc, config=config, not_a_parameter=True)

    @pytest.mark.parametrize("bad_config", [None, {}, object(), "config"])
    def test_config_must_be_a_lazyconfigmanager(self, empty_nc, bad_config):
        with pytest.raises(TypeError):
            HandlerBase(empty_nc, config=bad_config)

    def test_config_setter_validates(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        assert handler.config is config
        assert handler._config is config
        with pytest.raises(TypeError):
            handler.config = {"pipeline_config": {}}
        assert handler.config is config

    def test_attributes_are_stored(self, config, empty_nc):
        handler = HandlerBase(
            empty_nc,
            config=config,
            allowed_extensions=[".nc"],
            archive_input_file=True,
            harvest_type="csv",
            upload_path="some/upload/dir/file.nc",
            error_cleanup_regexes=["x.*"],
            custom_params={"a": 1},
        )
        assert handler.input_file == empty_nc
        assert handler.allowed_extensions == [".nc"]
        assert handler.archive_input_file is True
        assert handler.harvest_type == "csv"
        assert handler.upload_path == "some/upload/dir/file.nc"
        assert handler.error_cleanup_regexes == ["x.*"]
        assert handler.custom_params == {"a": 1}

    def test_initial_state(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        assert handler.state == "HANDLER_INITIAL"
        assert handler.is_HANDLER_INITIAL()
        assert handler.result is HandlerResult.UNKNOWN
        assert handler.error is None
        assert handler.error_details is None
        assert handler._error_details is None
        assert handler.file_collection is None
        assert handler.notification_results is None
        assert handler.should_notify is None
        assert handler._handler_run is False
        assert handler.instance_working_directory is None
        assert handler.collection_dir is None
        assert handler.products_dir is None
        assert handler.temp_dir is None
        assert handler.default_addition_publish_type is PUBLISH.HARVEST_UPLOAD
        assert handler.default_deletion_publish_type is PUBLISH.DELETE_UNHARVEST
        assert handler.harvest_type == "talend"

    def test_start_time_is_construction_time(self, config, empty_nc):
        from datetime import datetime

        before = datetime.now()
        handler = HandlerBase(empty_nc, config=config)
        after = datetime.now()
        assert before <= handler.start_time <= after

    def test_regex_properties(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        assert handler.include_regexes == []
        assert handler.exclude_regexes == []

        handler = HandlerBase(empty_nc, config=config, include_regexes=r"abc.*", exclude_regexes=re.compile("x"))
        assert [p.pattern for p in handler.include_regexes] == ["abc.*"]
        assert all(isinstance(p, re.Pattern) for p in handler.include_regexes)
        assert [p.pattern for p in handler.exclude_regexes] == ["x"]

        handler.include_regexes = ["a", "b"]
        assert [p.pattern for p in handler.include_regexes] == ["a", "b"]

    def test_invalid_regex_is_a_value_error(self, config, empty_nc):
        with pytest.raises(ValueError):
            HandlerBase(empty_nc, config=config, include_regexes=["("])
        with pytest.raises(ValueError):
            HandlerBase(empty_nc, config=config, exclude_regexes="[unclosed")

    def test_non_iterable_regexes_is_a_type_error(self, config, empty_nc):
        with pytest.raises(TypeError):
            HandlerBase(empty_nc, config=config, include_regexes=5)
        handler = HandlerBase(empty_nc, config=config)
        with pytest.raises(TypeError):
            handler.exclude_regexes = 1.5

    def test_default_publish_type_setters_validate(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        with pytest.raises(TypeError):
            handler.default_addition_publish_type = "UPLOAD_ONLY"
        with pytest.raises(TypeError):
            handler.default_deletion_publish_type = 3
        handler.default_addition_publish_type = PUBLISH.DELETE_ONLY  # any member is accepted
        handler.default_deletion_publish_type = PUBLISH.UPLOAD_ONLY
        assert handler.default_addition_publish_type is PUBLISH.DELETE_ONLY
        assert handler.default_deletion_publish_type is PUBLISH.UPLOAD_ONLY

    def test_input_file_object_is_lazy_and_cached(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        first = handler.input_file_object
        assert isinstance(first, PipelineFile)
        assert first.src_path == empty_nc
        assert handler.input_file_object is first

    def test_versions(self, config, empty_nc):
        import platform

        import aodncore

        handler = HandlerBase(empty_nc, config=config)
        versions = handler.versions
        assert versions["python"] == platform.python_version()
        assert versions["aodncore"] == aodncore.__version__

    def test_versions_reports_failed_module_loads(self, config, empty_nc):
        config.__dict__["discovered_module_versions"] = ({"some-plugin": "1.2.3"}, ["broken-plugin"])
        versions = HandlerBase(empty_nc, config=config).versions
        assert versions["some-plugin"] == "1.2.3"
        assert versions["broken-plugin"] == "LOAD_FAILED"

    def test_state_query_uses_upload_broker(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        query = handler.state_query
        assert query._storage_broker is handler._upload_store_runner.broker
        assert isinstance(handler._upload_store_runner.broker, LocalFileStorageBroker)
        assert handler._upload_store_runner.broker.prefix == store_dir(config, "upload_uri")
        assert handler.state_query is query


# -- run() once only, working directory ------------------------------------------------------------------------------


class TestRun:
    def test_run_only_once(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.run()
        assert handler.error is None
        assert handler._handler_run is True
        with pytest.raises(HandlerAlreadyRunError, match="handler instance has already been run"):
            handler.run()
        # the second call does not touch the outcome of the first
        assert handler.error is None
        assert handler.result is HandlerResult.SUCCESS

    def test_run_only_once_even_after_error(self, config, tmp_path):
        handler = HandlerBase(str(tmp_path / "missing.nc"), config=config)
        handler.run()
        assert isinstance(handler.error, InvalidInputFileError)
        with pytest.raises(HandlerAlreadyRunError):
            handler.run()

    def test_working_directory_is_created_in_tmp_dir_and_removed(self, config, empty_nc):
        seen = {}
        handler = upload_only_handler(empty_nc, config)

        def process():
            seen["dirs"] = {
                name: os.path.isdir(getattr(handler, name))
                for name in ("instance_working_directory", "collection_dir", "products_dir", "temp_dir")
            }

        handler.process = process
        handler.run()
        assert handler.error is None
        assert seen["dirs"] == dict.fromkeys(seen["dirs"], True)
        working_dir = handler.instance_working_directory
        assert os.path.dirname(working_dir) == config.pipeline_config["global"]["tmp_dir"]
        assert os.path.basename(working_dir).startswith("HandlerBase")
        assert handler.collection_dir == os.path.join(working_dir, "collection")
        assert handler.products_dir == os.path.join(working_dir, "products")
        assert handler.temp_dir == os.path.join(working_dir, "temp")
        assert not os.path.exists(working_dir)

    def test_working_directory_removed_after_error(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.process = raise_(RuntimeError("boom"))
        handler.run()
        assert isinstance(handler.error, RuntimeError)
        assert handler.instance_working_directory
        assert not os.path.exists(handler.instance_working_directory)

    def test_working_directory_prefix_is_subclass_name(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config)
        handler.run()
        assert os.path.basename(handler.instance_working_directory).startswith("DummyHandler")

    def test_run_never_raises_step_errors(self, config, empty_nc):
        for error in (RuntimeError("x"), KeyboardInterrupt(), SystemExit(3), InvalidFileContentError("bad")):
            handler = upload_only_handler(empty_nc, config)
            handler.preprocess = raise_(error)
            handler.run()  # must not raise
            assert handler.error is error
            assert handler.result is HandlerResult.ERROR
            assert handler.state == "HANDLER_COMPLETED_ERROR"


# -- state machine ------------------------------------------------------------------------------------------------


class TestStateMachine:
    def test_class_attributes(self):
        assert HandlerBase.ordered_states == ORDERED_STATES
        assert HandlerBase.other_states == OTHER_STATES
        assert HandlerBase.all_states == ORDERED_STATES + OTHER_STATES
        triggers = [t["trigger"] for t in HandlerBase.ordered_transitions]
        assert triggers == [
            "_trigger_initialise",
            "_trigger_resolve",
            "_trigger_preprocess",
            "_trigger_check",
            "_trigger_process",
            "_trigger_publish",
            "_trigger_postprocess",
        ]
        befores = [t["before"] for t in HandlerBase.ordered_transitions]
        assert befores == ["_initialise", "_resolve", "preprocess", "_check", "process", "_publish", "postprocess"]
        for transition in HandlerBase.all_transitions:
            assert set(transition) == {"trigger", "source", "dest", "before"}
        other = {t["trigger"]: t for t in HandlerBase.other_transitions}
        assert set(other["_trigger_notify_error"]["source"]) == set(ORDERED_STATES)
        assert other["_trigger_notify_success"]["source"] == "HANDLER_POSTPROCESSED"
        assert other["_trigger_complete_success"]["dest"] == "HANDLER_COMPLETED_SUCCESS"
        assert other["_trigger_complete_with_errors"]["dest"] == "HANDLER_COMPLETED_ERROR"
        assert HandlerBase.all_transitions == HandlerBase.ordered_transitions + HandlerBase.other_transitions

    def test_success_walks_every_state_in_order(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        states = record_states(handler)
        handler.run()
        assert handler.error is None, handler.error_details
        assert states == ORDERED_STATES[1:] + ["HANDLER_NOTIFIED_SUCCESS", "HANDLER_COMPLETED_SUCCESS"]
        assert handler.state == "HANDLER_COMPLETED_SUCCESS"
        assert handler.result is HandlerResult.SUCCESS

    def test_is_state_methods(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        for state in ORDERED_STATES + OTHER_STATES:
            assert getattr(handler, f"is_{state}")() is (state == "HANDLER_INITIAL")
        observed = {}

        def process():
            observed.update({state: getattr(handler, f"is_{state}")() for state in HandlerBase.all_states})

        handler.process = process
        handler.run()
        # ``process`` runs as the "before" callback of the CHECKED -> PROCESSED transition
        assert [state for state, value in observed.items() if value] == ["HANDLER_CHECKED"]
        assert handler.is_HANDLER_COMPLETED_SUCCESS()
        assert not handler.is_HANDLER_POSTPROCESSED()

    def test_hooks_replaced_with_plain_functions_run_in_order(self, config, empty_nc):
        calls = []
        handler = upload_only_handler(empty_nc, config)
        handler.preprocess = lambda: calls.append(("preprocess", handler.state))
        handler.process = lambda: calls.append(("process", handler.state))
        handler.postprocess = lambda: calls.append(("postprocess", handler.state))
        handler.run()
        assert handler.error is None, handler.error_details
        assert calls == [
            ("preprocess", "HANDLER_RESOLVED"),
            ("process", "HANDLER_CHECKED"),
            ("postprocess", "HANDLER_PUBLISHED"),
        ]

    def test_hooks_replaced_with_partial(self, config, empty_nc):
        calls = []

        def hook(name, collected):
            collected.append(name)

        handler = upload_only_handler(empty_nc, config)
        handler.preprocess = functools.partial(hook, "pre", calls)
        handler.postprocess = functools.partial(hook, "post", calls)
        handler.run()
        assert handler.error is None, handler.error_details
        assert calls == ["pre", "post"]

    def test_replacing_hook_on_one_instance_does_not_affect_others(self, config, empty_nc, good_nc):
        calls = []
        first = upload_only_handler(empty_nc, config)
        first.process = lambda: calls.append("first")
        second = upload_only_handler(good_nc, config)
        second.run()
        first.run()
        assert calls == ["first"]

    @pytest.mark.parametrize(
        "hook, last_state",
        [
            ("preprocess", "HANDLER_RESOLVED"),
            ("process", "HANDLER_CHECKED"),
            ("postprocess", "HANDLER_PUBLISHED"),
        ],
    )
    def test_hook_that_raises_leaves_state_unchanged(self, config, empty_nc, hook, last_state):
        handler = upload_only_handler(empty_nc, config)
        states = record_states(handler)
        seen_at_error = {}
        original_notify_error = handler._notify_error

        def notify_error():
            seen_at_error["state"] = handler.state
            original_notify_error()

        handler._notify_error = notify_error
        setattr(handler, hook, raise_(InvalidFileContentError(f"{hook} failed")))
        handler.run()
        assert isinstance(handler.error, InvalidFileContentError)
        index = ORDERED_STATES.index(last_state)
        assert states == ORDERED_STATES[1 : index + 1] + ["HANDLER_NOTIFIED_ERROR", "HANDLER_COMPLETED_ERROR"]
        assert seen_at_error["state"] == last_state
        assert handler.state == "HANDLER_COMPLETED_ERROR"
        assert handler.is_HANDLER_COMPLETED_ERROR()

    def test_triggers_fired_by_hand(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.preprocess = raise_(InvalidFileContentError("nope"))
        with pytest.raises(Exception):  # noqa: B017 - cannot skip a state
            handler._trigger_resolve()
        assert handler.state == "HANDLER_INITIAL"
        # the working directory normally comes from run(); give one for the hand-driven steps
        handler._instance_working_directory = os.path.join(os.path.dirname(empty_nc), "wd")
        os.makedirs(handler._instance_working_directory)
        handler._trigger_initialise()
        assert handler.state == "HANDLER_INITIALISED"
        handler._trigger_resolve()
        assert handler.state == "HANDLER_RESOLVED"
        with pytest.raises(InvalidFileContentError):
            handler._trigger_preprocess()
        assert handler.state == "HANDLER_RESOLVED"
        handler._trigger_notify_error()
        assert handler.state == "HANDLER_NOTIFIED_ERROR"

    def test_after_state_change_logs_and_updates_celery_task(self, config, empty_nc, caplog):
        updates = []
        task_logger = __import__("logging").getLogger("aodncore.tests.celery_task")
        task = SimpleNamespace(
            request=SimpleNamespace(id="task-id-123"),
            name="tasks.MY_PIPELINE",
            pipeline_name="MY_PIPELINE",
            logger=task_logger,
            update_state=lambda state: updates.append(state),
        )
        handler = upload_only_handler(empty_nc, config, celery_task=task)
        with caplog.at_level(1):
            handler.run()
        assert handler.error is None, handler.error_details
        assert updates == ORDERED_STATES[1:] + ["HANDLER_NOTIFIED_SUCCESS", "HANDLER_COMPLETED_SUCCESS"]
        messages = [r.getMessage() for r in caplog.records if r.name == "aodncore.tests.celery_task"]
        assert "HandlerBase transitioned to state: HANDLER_CHECKED" in messages
        assert handler.celery_task_id == "task-id-123"
        assert handler.celery_task_name == "tasks.MY_PIPELINE"
        assert handler.input_file_archive_path == os.path.join("MY_PIPELINE", os.path.basename(empty_nc))

    def test_statemachine_unit(self):
        from aodncore.pipeline.statemachine import Machine, MachineError

        class Model:
            def __init__(self):
                self.calls = []

            def go(self):
                self.calls.append(("go", self.state))

            def fail(self):
                raise ValueError("fail")

            def after(self):
                self.calls.append(("after", self.state))

        model = Model()
        machine = Machine(
            model,
            ["A", "B", "C"],
            "A",
            transitions=[
                {"trigger": "t1", "source": "A", "dest": "B", "before": "go"},
                {"trigger": "t2", "source": "B", "dest": "C", "before": "fail"},
                {"trigger": "reset", "source": "*", "dest": "A"},
            ],
            after_state_change="after",
        )
        assert model.state == "A"
        with pytest.raises(MachineError):
            machine.trigger("t2")
        with pytest.raises(MachineError):
            machine.trigger("no_such_trigger")
        assert machine.trigger("t1") is True
        assert model.state == "B"
        assert model.calls == [("go", "A"), ("after", "B")]
        with pytest.raises(ValueError, match="fail"):
            machine.trigger("t2")
        assert model.state == "B"
        assert model.calls == [("go", "A"), ("after", "B")]
        model.fail = lambda: model.calls.append("replaced")  # callbacks are looked up at trigger time
        machine.trigger("t2")
        assert model.state == "C"
        machine.trigger("reset")
        assert model.state == "A"
        with pytest.raises(ValueError):
            Machine(Model(), ["A"], "Z")


# -- error rules and recipients --------------------------------------------------------------------------------------


class TestErrors:
    def test_user_error(self, config, empty_nc, caplog):
        error = InvalidFileContentError("the content of 'x.nc' is bad")
        handler = upload_only_handler(empty_nc, config)
        handler.process = raise_(error)
        with caplog.at_level("INFO"):
            handler.run()
        assert handler.error is error
        assert handler.result is HandlerResult.ERROR
        assert handler.error_details == str(error)
        assert handler._error_details == str(error)
        assert "Traceback" not in handler.error_details
        error_records = [r for r in caplog.records if r.levelname == "ERROR" and "InvalidFileContentError" in
                         r.getMessage()]
        assert error_records and all(r.exc_info is None for r in error_records)
        assert error_records[0].getMessage() == "InvalidFileContentError: the content of 'x.nc' is bad"

    def test_system_error_details_are_a_traceback(self, config, empty_nc, caplog):
        handler = upload_only_handler(empty_nc, config)

        def process():
            raise RuntimeError("disk on fire")

        handler.process = process
        with caplog.at_level("INFO"):
            handler.run()
        assert isinstance(handler.error, RuntimeError)
        assert handler.result is HandlerResult.ERROR
        assert handler.error_details.startswith("Traceback (most recent call last):")
        assert "RuntimeError: disk on fire" in handler.error_details
        assert "in process" in handler.error_details
        assert any(r.exc_info for r in caplog.records if r.levelname == "ERROR")

    def test_nonexistent_input_is_invalid_input_file_error(self, config, tmp_path):
        handler = DummyHandler(str(tmp_path / "does_not_exist.zip"), config=config)
        handler.run()
        assert isinstance(handler.error, InvalidInputFileError)
        assert handler.state == "HANDLER_COMPLETED_ERROR"
        assert "Traceback" in handler.error_details

    def test_keyboard_interrupt_is_a_system_error(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, notify_params={"owner_notify_list": OWNERS,
                                                                       "error_notify_list": ERROR_LIST})
        handler.process = raise_(KeyboardInterrupt())
        handler.run()
        assert isinstance(handler.error, KeyboardInterrupt)
        assert "KeyboardInterrupt" in handler.error_details
        assert handler.should_notify == OWNERS

    def test_invalid_harvest_type_fails_at_publish(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, harvest_type="not-a-harvester")
        states = record_states(handler)
        handler.run()
        assert isinstance(handler.error, InvalidHarvesterError)
        assert "HANDLER_PROCESSED" in states and "HANDLER_PUBLISHED" not in states

    def test_notification_failure_after_success_is_swallowed(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler._notify_success = raise_(RuntimeError("notify broke"))
        handler.run()
        assert handler.result is HandlerResult.SUCCESS
        assert handler.error is None
        assert handler.state == "HANDLER_POSTPROCESSED"

    def test_notification_failure_after_error_is_swallowed(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.process = raise_(InvalidFileContentError("bad"))
        handler._notify_error = raise_(RuntimeError("notify broke"))
        handler.run()
        assert handler.result is HandlerResult.ERROR
        assert isinstance(handler.error, InvalidFileContentError)
        assert handler.state == "HANDLER_CHECKED"


def _notify_params(**flags):
    params = {"owner_notify_list": OWNERS, "success_notify_list": SUCCESS_LIST, "error_notify_list": ERROR_LIST}
    params.update(flags)
    return params


class TestRecipients:
    @pytest.mark.parametrize(
        "flags, expected",
        [
            ({}, SUCCESS_LIST),
            ({"notify_owner_success": False}, SUCCESS_LIST),
            ({"notify_owner_success": True}, SUCCESS_LIST + OWNERS),
            ({"notify_owner_error": True}, SUCCESS_LIST),
        ],
    )
    def test_success(self, config, empty_nc, flags, expected):
        handler = upload_only_handler(empty_nc, config, notify_params=_notify_params(**flags))
        handler.run()
        assert handler.result is HandlerResult.SUCCESS, handler.error_details
        assert handler.should_notify == expected
        assert [r.raw_string for r in handler.notification_results] == expected

    @pytest.mark.parametrize(
        "flags, expected",
        [
            ({}, ERROR_LIST),
            ({"notify_owner_error": True}, ERROR_LIST + OWNERS),
            ({"notify_owner_success": True}, ERROR_LIST),
        ],
    )
    def test_user_error(self, config, empty_nc, flags, expected):
        handler = upload_only_handler(empty_nc, config, notify_params=_notify_params(**flags))
        handler.process = raise_(InvalidFileContentError("bad content"))
        handler.run()
        assert handler.should_notify == expected
        assert sorted(handler.should_notify) == sorted(expected)  # assertCountEqual

    @pytest.mark.parametrize("flags", [{}, {"notify_owner_error": False}, {"notify_owner_error": True}])
    def test_system_error_always_owners_never_error_list(self, config, empty_nc, flags, caplog):
        handler = upload_only_handler(empty_nc, config, notify_params=_notify_params(**flags))
        handler.process = raise_(RuntimeError("system"))
        with caplog.at_level("WARNING"):
            handler.run()
        assert handler.should_notify == OWNERS
        assert "error_notify_list" in caplog.text  # a warning says the error list is not used

    @pytest.mark.parametrize("error", [InvalidConfigError("bad config"), MissingConfigParameterError("missing")])
    def test_config_errors_notify_nobody(self, config, empty_nc, error):
        handler = upload_only_handler(empty_nc, config, notify_params=_notify_params(notify_owner_error=True))
        handler.preprocess = raise_(error)
        handler.run()
        assert handler.error is error
        assert handler.should_notify == []
        assert handler.notification_results is None
        assert handler.state == "HANDLER_COMPLETED_ERROR"

    def test_no_notify_params(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.run()
        assert handler.should_notify == []
        assert handler.notification_results is None

    def test_no_notify_params_error(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.process = raise_(RuntimeError("x"))
        handler.run()
        assert handler.should_notify == []
        assert handler.notification_results is None

    def test_only_owner_list_user_error_without_flag(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, notify_params={"owner_notify_list": OWNERS})
        handler.process = raise_(InvalidFileContentError("bad"))
        handler.run()
        assert handler.should_notify == []
        assert handler.notification_results is None


# -- params ---------------------------------------------------------------------------------------------------------


class TestParams:
    def test_params_are_frozen(self, config, empty_nc):
        handler = upload_only_handler(
            empty_nc,
            config,
            check_params={"checks": []},
            custom_params={"anything": [1, 2]},
            harvest_params={"ingest_type": "replace"},
            notify_params={"owner_notify_list": []},
            resolve_params={"relative_path_root": "/"},
        )
        handler.run()
        assert handler.error is None, handler.error_details
        for name in ("check_params", "custom_params", "harvest_params", "notify_params", "resolve_params"):
            assert isinstance(getattr(handler, name), WriteOnceOrderedDict), name
        assert handler.custom_params["anything"] == [1, 2]
        with pytest.raises(Exception):  # noqa: B017 - write once
            handler.check_params["checks"] = ["cf"]

    def test_none_params_stay_none(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.run()
        for name in ("check_params", "custom_params", "harvest_params", "notify_params", "resolve_params"):
            assert getattr(handler, name) is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"check_params": {"checks": "cf"}},
            {"check_params": {"not_a_key": 1}},
            {"custom_params": ["not", "an", "object"]},
            {"notify_params": {"owner_notify_list": "email:x@example.com"}},
            {"notify_params": {"notify_owner_error": "yes"}},
        ],
    )
    def test_invalid_params_fail_inside_run(self, config, empty_nc, kwargs):
        handler = upload_only_handler(empty_nc, config, **kwargs)  # the constructor accepts anything
        states = record_states(handler)
        handler.run()
        assert isinstance(handler.error, jsonschema.exceptions.ValidationError)
        assert handler.result is HandlerResult.ERROR
        assert "Traceback" in handler.error_details  # a system error
        assert states == ["HANDLER_NOTIFIED_ERROR", "HANDLER_COMPLETED_ERROR"]

    def test_params_set_after_construction_are_honoured(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.check_params = {"checks": "not-a-list"}
        handler.run()
        assert isinstance(handler.error, jsonschema.exceptions.ValidationError)


# -- input file checks ------------------------------------------------------------------------------------------------


class TestInputFile:
    def test_input_file_attributes(self, config, good_nc):
        from aodncore.util import get_file_checksum

        handler = upload_only_handler(good_nc, config)
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler.file_basename == GOOD_NC
        assert handler.file_extension == ".nc"
        assert handler.file_type is FileType.NETCDF
        assert handler.file_checksum == get_file_checksum(good_nc)
        assert re.fullmatch(r"[0-9a-f]{64}", handler.file_checksum)

    def test_allowed_extensions_mismatch(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, allowed_extensions=[".zip", ".NC"])
        handler.run()
        assert isinstance(handler.error, InvalidFileFormatError)
        assert re.match(r"input file extension '\.nc' not in allowed_extensions list:", str(handler.error))
        assert "['.zip', '.NC']" in str(handler.error)
        assert handler.error_details == str(handler.error)  # a user error

    def test_allowed_extensions_match(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, allowed_extensions=[".zip", ".nc"])
        handler.run()
        assert handler.error is None, handler.error_details

    def test_allowed_regexes_mismatch(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, allowed_regexes=[r"IMOS_.*\.nc", r"file\.nc"])
        handler.run()
        assert isinstance(handler.error, InvalidInputFileError)
        assert re.match(
            r"input file 'empty_file\.nc' does not match any patterns in the allowed_regexes list:",
            str(handler.error),
        )
        assert "Traceback" in handler.error_details  # a system error

    def test_allowed_regexes_match_basename_from_start(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, allowed_regexes=[r"empty_"])
        handler.run()
        assert handler.error is None, handler.error_details

    def test_extensions_checked_before_regexes(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config, allowed_extensions=[".zip"], allowed_regexes=["nomatch"])
        handler.run()
        assert isinstance(handler.error, InvalidFileFormatError)

    def test_allowed_extensions_set_after_construction(self, config, empty_nc):
        handler = upload_only_handler(empty_nc, config)
        handler.allowed_extensions = [".csv"]
        handler.run()
        assert isinstance(handler.error, InvalidFileFormatError)


# -- path functions ---------------------------------------------------------------------------------------------------


def prefix_path(path):
    return os.path.join("PREFIXED", os.path.basename(path))


def archive_prefix_path(path):
    return os.path.join("ARCHIVED", os.path.basename(path))


class WithMethods(HandlerBase):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PUBLISH.HARVEST_ARCHIVE_UPLOAD

    @staticmethod
    def dest_path(path):
        return os.path.join("METHOD_DEST", os.path.basename(path))

    def archive_path(self, path):
        return os.path.join("METHOD_ARCHIVE", os.path.basename(path))


class TestPathFunctions:
    def test_no_path_function_fails_at_initialise(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        states = record_states(handler)
        handler.run()
        assert isinstance(handler.error, InvalidPathFunctionError)
        assert states == ["HANDLER_NOTIFIED_ERROR", "HANDLER_COMPLETED_ERROR"]

    def test_callable(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path)
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler._dest_path_function_ref is prefix_path
        assert handler._dest_path_function_name == f"{__name__}.prefix_path"
        # archive falls back to the dest function
        assert handler._archive_path_function_ref is prefix_path
        assert handler.file_collection[0].dest_path == f"PREFIXED/{GOOD_NC}"
        assert os.path.isfile(os.path.join(store_dir(config, "upload_uri"), "PREFIXED", GOOD_NC))

    def test_entry_point_name(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function="dest_path_testing")
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler._dest_path_function_ref is dest_path_testing
        assert handler._dest_path_function_name == "aodncore.testlib.testutil.dest_path_testing"
        src = handler.file_collection[0].src_path
        assert handler.file_collection[0].dest_path == os.path.join("DUMMY", os.path.relpath(src, "/"))

    def test_unknown_entry_point_name(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config, dest_path_function="no_such_function")
        handler.run()
        assert isinstance(handler.error, InvalidPathFunctionError)
        assert "no_such_function" in str(handler.error)

    def test_failed_entry_point(self, config, empty_nc):
        config.__dict__["discovered_dest_path_functions"] = ({}, ["broken_function"])
        handler = HandlerBase(empty_nc, config=config, dest_path_function="broken_function")
        handler.run()
        assert isinstance(handler.error, InvalidPathFunctionError)
        assert "broken_function" in str(handler.error)

    def test_non_callable_parameter(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config, dest_path_function=42)
        handler.run()
        assert isinstance(handler.error, InvalidPathFunctionError)

    def test_methods(self, config, good_nc):
        handler = WithMethods(good_nc, config=config)
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler._dest_path_function_name == "WithMethods.dest_path"
        assert handler._archive_path_function_name == "WithMethods.archive_path"
        pipeline_file = handler.file_collection[0]
        assert pipeline_file.dest_path == f"METHOD_DEST/{GOOD_NC}"
        assert pipeline_file.archive_path == f"METHOD_ARCHIVE/{GOOD_NC}"
        assert pipeline_file.is_archived
        assert os.path.isfile(os.path.join(store_dir(config, "archive_uri"), "METHOD_ARCHIVE", GOOD_NC))

    def test_parameter_overrides_method(self, config, good_nc):
        handler = WithMethods(good_nc, config=config, dest_path_function=prefix_path,
                              archive_path_function=archive_prefix_path)
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler._archive_path_function_ref is archive_prefix_path
        assert handler.file_collection[0].archive_path == f"ARCHIVED/{GOOD_NC}"
        assert handler.file_collection[0].dest_path == f"PREFIXED/{GOOD_NC}"

    def test_instance_attribute_callable(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config)
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.dest_path = prefix_path
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler.file_collection[0].dest_path == f"PREFIXED/{GOOD_NC}"

    def test_invalid_archive_function_falls_back_to_dest(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path,
                              archive_path_function="no_such_archive_function")
        handler.default_addition_publish_type = PUBLISH.ARCHIVE_ONLY
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler._archive_path_function_ref is prefix_path
        assert handler.file_collection[0].archive_path == f"PREFIXED/{GOOD_NC}"
        assert handler.file_collection[0].is_archived

    def test_dest_path_function_set_after_construction(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config)
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.dest_path_function = "dest_path_testing"
        handler.run()
        assert handler.error is None, handler.error_details


# -- include/exclude, allowed path regexes -----------------------------------------------------------------------


class TestFiltersAndPaths:
    def test_include_regex_leaves_unmatched_unset(self, config, good_and_bad_zip):
        """§18 error example."""
        notify = _notify_params(notify_owner_error=False)
        handler = DummyHandler(good_and_bad_zip, config=config, include_regexes=[r".*realtime\.nc"],
                               notify_params=notify)
        handler.run()
        assert isinstance(handler.error, UnmatchedFilesError)
        assert handler.result is HandlerResult.ERROR
        assert handler.error_details.startswith("Traceback")
        assert BAD_NC in str(handler.error)
        assert handler.should_notify == OWNERS
        assert handler.state == "HANDLER_COMPLETED_ERROR"
        published = handler.file_collection.filter_by_attribute_id_not("publish_type", PUBLISH.UNSET)
        assert [f.name for f in published] == [GOOD_NC]
        unset = handler.file_collection.filter_by_attribute_id("publish_type", PUBLISH.UNSET)
        assert [f.name for f in unset] == [BAD_NC]
        assert not any(f.is_archived or f.is_stored or f.is_harvested for f in handler.file_collection)

    def test_exclude_regex_leaves_excluded_unset(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config, exclude_regexes=[r".*BAD"])
        handler.run()
        assert isinstance(handler.error, UnmatchedFilesError)
        assert [f.name for f in handler.file_collection.filter_by_attribute_id("publish_type", PUBLISH.UNSET)] == [
            BAD_NC
        ]

    def test_unset_files_given_a_type_in_a_hook_are_published(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config, include_regexes=[r".*realtime\.nc"])

        def process():
            for f in handler.file_collection.filter_by_attribute_id("publish_type", PUBLISH.UNSET):
                f.publish_type = PUBLISH.NO_ACTION

        handler.process = process
        handler.run()
        assert handler.error is None, handler.error_details
        by_name = {f.name: f for f in handler.file_collection}
        assert by_name[BAD_NC].publish_type is PUBLISH.NO_ACTION
        assert not by_name[BAD_NC].is_stored
        assert by_name[GOOD_NC].is_stored

    def test_allowed_dest_path_regexes_mismatch(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path,
                              allowed_dest_path_regexes=[r"IMOS/"])
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.run()
        assert isinstance(handler.error, AttributeValidationError)
        assert not handler.file_collection[0].is_stored
        assert os.listdir(store_dir(config, "upload_uri")) == []

    def test_allowed_dest_path_regexes_match(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path,
                              allowed_dest_path_regexes=[r"IMOS/", r"PREFIXED/"])
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.run()
        assert handler.error is None, handler.error_details

    def test_allowed_archive_path_regexes_mismatch(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path,
                              archive_path_function=archive_prefix_path,
                              allowed_archive_path_regexes=[r"PREFIXED/"])
        handler.default_addition_publish_type = PUBLISH.ARCHIVE_ONLY
        handler.run()
        assert isinstance(handler.error, AttributeValidationError)
        assert not handler.file_collection[0].is_archived

    def test_allowed_archive_path_regexes_ignore_files_not_archived(self, config, good_nc):
        handler = HandlerBase(good_nc, config=config, dest_path_function=prefix_path,
                              archive_path_function=archive_prefix_path,
                              allowed_archive_path_regexes=[r"NEVER/"])
        handler.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        handler.run()
        assert handler.error is None, handler.error_details


# -- archive_input_file, add_to_collection ----------------------------------------------------------------------------


class TestArchiveInputAndCollection:
    def test_archive_input_file(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config, archive_input_file=True)
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler.input_file_object.is_archived
        assert handler.input_file_object.publish_type is PUBLISH.ARCHIVE_ONLY
        assert handler.input_file_object.archive_path == os.path.join("NO_PIPELINE", "good_and_bad.zip")
        archived = os.path.join(store_dir(config, "archive_uri"), "NO_PIPELINE", "good_and_bad.zip")
        with open(archived, "rb") as stored, open(good_and_bad_zip, "rb") as original:
            assert stored.read() == original.read()

    def test_archive_input_file_custom_path_and_preset_type(self, config, good_nc):
        handler = upload_only_handler(good_nc, config, archive_input_file=True)
        handler.input_file_archive_path = "custom/dir/input.nc"
        handler.input_file_object.publish_type = PUBLISH.HARVEST_ARCHIVE_UPLOAD
        handler.run()
        assert handler.error is None, handler.error_details
        assert handler.input_file_object.publish_type is PUBLISH.HARVEST_ARCHIVE_UPLOAD  # preserved
        assert handler.input_file_object.is_archived
        assert not handler.input_file_object.is_stored  # only the archive action for the input file
        assert not handler.input_file_object.is_harvested
        assert os.path.isfile(os.path.join(store_dir(config, "archive_uri"), "custom", "dir", "input.nc"))

    def test_input_file_not_archived_by_default(self, config, good_nc):
        handler = upload_only_handler(good_nc, config)
        handler.run()
        assert handler.error is None
        assert not handler.input_file_object.is_archived
        assert not os.listdir(store_dir(config, "archive_uri"))

    def test_input_file_archive_path_default_and_setter(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        assert handler.input_file_archive_path == os.path.join("NO_PIPELINE", "empty_file.nc")
        handler.input_file_archive_path = "a/b/c.nc"
        assert handler.input_file_archive_path == "a/b/c.nc"
        with pytest.raises(ValueError):
            handler.input_file_archive_path = "/absolute/path.nc"
        assert handler.input_file_archive_path == "a/b/c.nc"

    def test_add_to_collection(self, config, good_nc, tmp_path):
        extra_path = str(tmp_path / "extra_product.nc")
        make_test_file(extra_path)
        second_path = str(tmp_path / "second_product.nc")
        make_test_file(second_path)
        results = {}
        handler = upload_only_handler(good_nc, config)

        def process():
            results["path"] = handler.add_to_collection(extra_path, publish_type=PUBLISH.UPLOAD_ONLY,
                                                        dest_path="products/extra.nc")
            pipeline_file = PipelineFile(second_path, dest_path="products/second.nc")
            pipeline_file.publish_type = PUBLISH.ARCHIVE_ONLY
            handler.add_to_collection(pipeline_file)
            results["callback"] = pipeline_file.file_update_callback
            with pytest.raises(TypeError):
                handler.add_to_collection(12345)

        handler.process = process
        handler.run()
        assert handler.error is None, handler.error_details
        assert len(handler.file_collection) == 3
        by_name = {f.name: f for f in handler.file_collection}
        assert by_name["extra_product.nc"].dest_path == "products/extra.nc"
        assert by_name["extra_product.nc"].is_stored
        assert by_name["extra_product.nc"].file_update_callback == handler._file_update_callback
        assert results["callback"] == handler._file_update_callback
        assert by_name["second_product.nc"].is_archived
        assert not by_name["second_product.nc"].is_stored
        assert os.path.isfile(os.path.join(store_dir(config, "upload_uri"), "products", "extra.nc"))

    def test_add_to_collection_callback_logs(self, config, good_nc, tmp_path, caplog):
        handler = upload_only_handler(good_nc, config)
        with caplog.at_level(SYSINFO):
            handler.run()
        assert f"updated file '{GOOD_NC}'" in caplog.text


# -- iter / str ---------------------------------------------------------------------------------------------------


class TestIteration:
    EXCLUDED = {
        "celery_task",
        "config",
        "default_deletion_publish_type",
        "input_file_object",
        "logger",
        "state",
        "state_query",
        "trigger",
    }

    def test_keys(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config, upload_path="incoming/x/good_and_bad.zip")
        keys = dict(handler).keys()
        expected = {
            "input_file", "allowed_archive_path_regexes", "allowed_dest_path_regexes", "allowed_extensions",
            "allowed_regexes", "archive_input_file", "archive_path_function", "check_params", "custom_params",
            "dest_path_function", "error_cleanup_regexes", "harvest_params", "harvest_type", "notify_params",
            "upload_path", "resolve_params", "opendap_root", "versions", "celery_task_id", "celery_task_name",
            "collection_dir", "error", "error_details", "exclude_regexes", "file_basename", "file_checksum",
            "file_collection", "file_extension", "file_type", "include_regexes", "input_file_archive_path",
            "instance_working_directory", "notification_results", "products_dir", "result", "should_notify",
            "start_time", "temp_dir",
        }
        assert expected <= set(keys)
        assert not (self.EXCLUDED & set(keys))
        assert dict(handler)["default_addition_publish_type"] is handler.default_addition_publish_type  # master has it
        assert not [k for k in keys if k.startswith("is_HANDLER_") or k.startswith("_")]
        assert dict(handler)["opendap_root"] == "http://opendap.example.com"
        assert dict(handler)["input_file_archive_path"] == "NO_PIPELINE/good_and_bad.zip"

    def test_keys_are_unique(self, config, empty_nc):
        keys = [name for name, _ in HandlerBase(empty_nc, config=config)]
        assert len(keys) == len(set(keys))

    def test_str(self, config, empty_nc):
        handler = HandlerBase(empty_nc, config=config)
        text = str(handler)
        assert text.startswith("HandlerBase({")
        assert text.endswith("})")
        assert f"'input_file': '{empty_nc}'" in text
        assert "'celery_task_name': 'NO_TASK'" in text

    def test_values_after_run(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config)
        handler.run()
        values = dict(handler)
        assert values["result"] is HandlerResult.SUCCESS
        assert values["file_collection"] is handler.file_collection
        assert values["file_type"] is FileType.ZIP


# -- §18 worked example, user-error example, e-mail --------------------------------------------------------------


class TestWorkedExample:
    def test_dummy_handler_good_and_bad_zip(self, config, good_and_bad_zip, caplog):
        handler = DummyHandler(good_and_bad_zip, config=config)
        with caplog.at_level("INFO"):
            handler.run()
        assert handler.error is None, handler.error_details
        assert handler.result is HandlerResult.SUCCESS
        assert handler.state == "HANDLER_COMPLETED_SUCCESS"
        assert handler.file_extension == ".zip"
        assert handler.file_type is FileType.ZIP
        assert handler._dest_path_function_name == "DummyHandler.dest_path"
        assert handler._archive_path_function_name == "DummyHandler.dest_path"
        assert handler.should_notify == []
        assert handler.notification_results is None
        assert not os.path.exists(handler.instance_working_directory)

        files = list(handler.file_collection)
        assert [f.name for f in files] == [BAD_NC, GOOD_NC]
        assert files[0].check_type is CHECK.FORMAT_CHECK
        assert files[0].is_checked
        assert files[1].check_type is CHECK.NO_ACTION
        assert not files[1].is_checked
        upload_dir = store_dir(config, "upload_uri")
        archive_dir = store_dir(config, "archive_uri")
        for pipeline_file in files:
            assert pipeline_file.publish_type is PUBLISH.HARVEST_ARCHIVE_UPLOAD
            assert pipeline_file.dest_path == f"DUMMY/path/renamed-from-handler-method-{pipeline_file.src_path}"
            assert pipeline_file.archive_path == pipeline_file.dest_path
            assert pipeline_file.is_archived and pipeline_file.is_harvested and pipeline_file.is_stored
            assert os.path.isfile(os.path.join(upload_dir, pipeline_file.dest_path))
            assert os.path.isfile(os.path.join(archive_dir, pipeline_file.archive_path))
            assert pipeline_file.is_overwrite is False

        # the talend harvesters of the test trigger.conf really ran their ``echo`` commands
        for harvester in ("zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"):
            assert f"{harvester} --context_param" in caplog.text

    def test_rerun_detects_overwrite(self, config, good_and_bad_zip):
        first = HandlerBase(good_and_bad_zip, config=config, dest_path_function=prefix_path)
        first.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        first.run()
        assert first.error is None, first.error_details
        assert not any(f.is_overwrite for f in first.file_collection)
        second = HandlerBase(good_and_bad_zip, config=config, dest_path_function=prefix_path)
        second.default_addition_publish_type = PUBLISH.UPLOAD_ONLY
        second.run()
        assert second.error is None, second.error_details
        assert all(f.is_overwrite for f in second.file_collection)

    def test_checks_param_gives_compliance_check(self, config, good_and_bad_zip):
        handler = DummyHandler(good_and_bad_zip, config=config, check_params={"checks": ["cf"]})
        handler.run()
        assert handler.file_collection[0].check_type is CHECK.NC_COMPLIANCE_CHECK
        assert handler.file_collection[1].check_type is CHECK.NO_ACTION

    def test_not_a_netcdf_with_cf_checks_is_a_user_error(self, config, imos_file):
        path = str(imos_file("not_a_netcdf_file.nc"))
        handler = upload_only_handler(
            path, config, check_params={"checks": ["cf:1.6"]}, notify_params=_notify_params(notify_owner_error=True)
        )
        handler.run()
        assert isinstance(handler.error, ComplianceCheckFailedError)
        assert handler.result is HandlerResult.ERROR
        assert handler.error_details == str(handler.error)
        assert "not_a_netcdf_file.nc" in handler.error_details
        pipeline_file = handler.file_collection[0]
        assert pipeline_file.check_type is CHECK.NC_COMPLIANCE_CHECK
        assert pipeline_file.check_result is not None and not pipeline_file.check_result.compliant
        assert sorted(handler.should_notify) == sorted(ERROR_LIST + OWNERS)
        assert not pipeline_file.is_stored
        assert os.listdir(store_dir(config, "upload_uri")) == []
        # notification was attempted (the test SMTP host is a random name: delivery fails, is recorded, not raised)
        assert handler.notification_results is not None
        assert all(r.notification_attempted for r in handler.notification_results)
        assert not any(r.notification_succeeded for r in handler.notification_results)

    def test_zip_of_generated_files_with_make_zip(self, config, tmp_path):
        paths = []
        for name in ("b_file.nc", "a_file.nc", "c_file.nc"):
            path = str(tmp_path / name)
            make_test_file(path, {"title": name})
            paths.append(path)
        zip_path = make_zip(str(tmp_path), paths)
        handler = DummyHandler(zip_path, config=config)
        handler.run()
        assert handler.error is None, handler.error_details
        assert [f.name for f in handler.file_collection] == ["a_file.nc", "b_file.nc", "c_file.nc"]
        assert [f.check_type for f in handler.file_collection] == [CHECK.FORMAT_CHECK, CHECK.NO_ACTION,
                                                                   CHECK.NO_ACTION]


class _Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield collector, controller.port
    controller.stop()


def test_error_email_sent_to_real_smtp_server(tmp_path, smtp_server, imos_file):
    collector, port = smtp_server
    config = get_test_config(str(tmp_path))
    with open(os.path.join(TESTLIB_CONF_DIR, "pipeline.conf")) as handle:
        mail = json.load(handle)["mail"]
    mail.update({"smtp_server": "127.0.0.1", "smtp_port": port, "smtp_user": "", "smtp_pass": "",
                 "subject": "[{processing_result}] {input_file}"})
    config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"), GLOBAL_TEST_BASE, str(tmp_path),
        additional_patch={"mail": mail},
    )
    assert config.pipeline_config["mail"]["smtp_port"] == port

    path = str(imos_file("not_a_netcdf_file.nc"))
    handler = HandlerBase(
        path,
        config=config,
        dest_path_function=dest_path_testing,
        check_params={"checks": ["cf:1.6"]},
        upload_path="incoming/some/dir/not_a_netcdf_file.nc",
        notify_params={
            "error_notify_list": ["email:uploader@example.com"],
            "owner_notify_list": ["email:owner@example.com"],
            "success_notify_list": ["email:success@example.com"],
        },
    )
    handler.run()
    assert isinstance(handler.error, ComplianceCheckFailedError)
    assert handler.should_notify == ["email:uploader@example.com"]
    assert [r.notification_succeeded for r in handler.notification_results] == [True]

    assert len(collector.envelopes) == 1
    envelope = collector.envelopes[0]
    assert envelope.rcpt_tos == ["uploader@example.com"]
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == "[ERROR] not_a_netcdf_file.nc"
    texts = [part.get_payload(decode=True).decode() for part in message.walk()
             if part.get_content_maintype() == "text"]
    body = "\n".join(texts)
    assert "not_a_netcdf_file.nc" in body
    assert "failed the check step" in body  # error_details of the user error
    assert "incoming/some/dir" in body  # upload_dir


def test_success_email_to_real_smtp_server(tmp_path, smtp_server, good_nc):
    collector, port = smtp_server
    config = get_test_config(str(tmp_path))
    with open(os.path.join(TESTLIB_CONF_DIR, "pipeline.conf")) as handle:
        mail = json.load(handle)["mail"]
    mail.update({"smtp_server": "127.0.0.1", "smtp_port": port, "smtp_user": "", "smtp_pass": ""})
    config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"), GLOBAL_TEST_BASE, str(tmp_path),
        additional_patch={"mail": mail},
    )
    handler = upload_only_handler(good_nc, config, notify_params=_notify_params(notify_owner_success=True))
    handler.run()
    assert handler.error is None, handler.error_details
    assert len(collector.envelopes) == 1
    assert sorted(collector.envelopes[0].rcpt_tos) == sorted(
        [r.split(":", 1)[1] for r in SUCCESS_LIST + OWNERS]
    )


def test_traceback_module_is_used_for_system_errors(config, empty_nc):
    """error_details for a system error equals what ``traceback`` formats for that exception."""
    handler = upload_only_handler(empty_nc, config)
    error = RuntimeError("formatted")
    handler.process = raise_(error)
    handler.run()
    expected_tail = "".join(traceback.format_exception_only(type(error), error))
    assert handler.error_details.endswith(expected_tail)


def test_file_collection_is_a_pipelinefilecollection(config, empty_nc):
    handler = upload_only_handler(empty_nc, config)
    handler.run()
    assert isinstance(handler.file_collection, PipelineFileCollection)
    assert len(handler.file_collection) == 1


@pytest.mark.parametrize(
    "notify_params",
    [["email:x@example.com"], "email:x@example.com", {"owner_notify_list": "email:x@example.com"},
     {"owner_notify_list": [1, 2]}],
)
def test_malformed_notify_params_are_reported_not_raised(config, empty_nc, notify_params):
    handler = upload_only_handler(empty_nc, config, notify_params=notify_params)
    handler.run()  # must not raise, even though the recipients cannot be worked out
    assert isinstance(handler.error, jsonschema.exceptions.ValidationError)
    assert handler.should_notify == []
    assert handler.state == "HANDLER_COMPLETED_ERROR"


def test_deletion_added_in_a_hook_is_not_checked_and_deletes(config, empty_nc):
    upload_dir = store_dir(config, "upload_uri")
    os.makedirs(os.path.join(upload_dir, "old"))
    with open(os.path.join(upload_dir, "old", "gone.nc"), "w") as handle:
        handle.write("old content")
    handler = upload_only_handler(empty_nc, config)

    def preprocess():
        deletion = PipelineFile("gone.nc", is_deletion=True, dest_path="old/gone.nc")
        deletion.publish_type = PUBLISH.DELETE_ONLY
        handler.add_to_collection(deletion)

    handler.preprocess = preprocess
    handler.run()
    assert handler.error is None, handler.error_details
    deletion = handler.file_collection.filter_by_bool_attribute("is_deletion")[0]
    assert deletion.check_type is CHECK.UNSET
    assert not deletion.is_checked
    assert deletion.is_stored
    assert not os.path.exists(os.path.join(upload_dir, "old", "gone.nc"))
    addition = handler.file_collection.filter_by_bool_attribute_not("is_deletion")[0]
    assert addition.check_type is CHECK.FORMAT_CHECK and addition.is_checked

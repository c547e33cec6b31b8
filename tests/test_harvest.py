"""Harvest step: Talend trigger-config runner (real shell commands), helpers, and the store-only NoHarvestRunner."""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

from aodncore.common import SystemCommandFailedError
from aodncore.pipeline import PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.exceptions import InvalidHarvesterError, UnmappedFilesError
from aodncore.pipeline.steps import harvest
from aodncore.pipeline.steps.harvest import (
    HarvesterMap,
    NoHarvestRunner,
    TalendHarvesterRunner,
    TriggerEvent,
    create_input_file_list,
    create_symlink,
    executor_conversion,
    get_harvester_runner,
    validate_harvester_mapping,
)
from aodncore.pipeline.storage import LocalFileStorageBroker

P = PipelineFilePublishType
LOGGER = logging.getLogger("aodncore.tests.harvest")


def make_config(tmp_path: Path, trigger_config: dict) -> SimpleNamespace:
    return SimpleNamespace(
        trigger_config=OrderedDict(trigger_config),
        pipeline_config={"talend": {"talend_log_dir": str(tmp_path / "talend_logs")}},
    )


def reference_trigger_config() -> OrderedDict:
    """The testlib's shipped trigger.conf: three harvesters (zzz, aaa with two events, mmm), all matching '.*'."""
    text = resources.files("aodncore.testlib.conf").joinpath("trigger.conf").read_text()
    config = json.loads(text, object_pairs_hook=OrderedDict)
    assert list(config) == ["zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"]
    return config


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def broker(store):
    return LocalFileStorageBroker(str(store))


@pytest.fixture
def make_file(tmp_path):
    source_dir = tmp_path / "sources"
    source_dir.mkdir()

    def _make(name: str, publish_type=P.HARVEST_UPLOAD, dest_dir: str = "IMOS/TEST", is_deletion=False,
              late_deletion=False, content: str | None = None) -> PipelineFile:
        local_path = source_dir / name
        if not is_deletion:
            local_path.write_text(content if content is not None else f"content of {name}\n")
        return PipelineFile(str(local_path), is_deletion=is_deletion, late_deletion=late_deletion,
                            dest_path=f"{dest_dir}/{name}", publish_type=publish_type)

    return _make


RECORDING_SCRIPT = """#!/bin/sh
# usage: script --base=<dir> --list=<file list> [extra...]
base="${1#--base=}"
list="${2#--list=}"
if [ -n "$(ls -A "$base" | grep -v '^file_list')" ]; then mode=add; else mode=delete; fi
echo "$mode $(tr '\\n' ' ' < "$list")" >> "RECORD"
if [ "$mode" = add ] && grep -q bad "$list"; then echo "harvest of bad file failed"; exit 1; fi
echo "harvest $mode ok"
"""


@pytest.fixture
def recording_harvester(tmp_path):
    """A harvester command recording each call ('add'/'delete' + listed dest paths) and failing for 'bad' files."""
    record = tmp_path / "record.txt"
    script = tmp_path / "harvest.sh"
    script.write_text(RECORDING_SCRIPT.replace("RECORD", str(record)))

    def calls() -> list[list[str]]:
        if not record.exists():
            return []
        return [line.split() for line in record.read_text().splitlines()]

    return f"sh {script} --base=%{{base}} --list=%{{file_list}}", calls


# ---------------------------------------------------------------------------------------------------------------------
# factory and helpers


def test_get_harvester_runner_dispatch(tmp_path, broker):
    config = make_config(tmp_path, {})
    talend = get_harvester_runner("talend", broker, {"slice_size": 5}, str(tmp_path), config, LOGGER)
    assert isinstance(talend, TalendHarvesterRunner)
    assert talend.slice_size == 5 and talend.undo_previous_slices is True and talend.storage_broker is broker
    assert talend.tmp_base_dir == str(tmp_path)

    none = get_harvester_runner(None, broker, None, str(tmp_path), config, LOGGER)
    assert isinstance(none, NoHarvestRunner)
    assert none.storage_broker is broker and none.unexpected_pipeline_files == []

    csv = get_harvester_runner("csv", broker, {"db_schema": "s", "db_objects": []}, str(tmp_path), config, LOGGER)
    assert isinstance(csv, harvest.CsvHarvesterRunner)

    with pytest.raises(InvalidHarvesterError, match="invalid harvester 'nope'"):
        get_harvester_runner("nope", broker, None, str(tmp_path), config, LOGGER)


def test_get_harvester_runner_resolves_csv_runner_at_call_time(monkeypatch, tmp_path):
    class FakeCsvRunner:
        def __init__(self, *args):
            self.args = args

    monkeypatch.setattr(harvest, "CsvHarvesterRunner", FakeCsvRunner)
    runner = get_harvester_runner("csv", "broker", {"x": 1}, "/tmp", "config", "logger")
    assert isinstance(runner, FakeCsvRunner)
    assert runner.args == ("broker", {"x": 1}, "config", "logger")


def test_talend_defaults():
    runner = TalendHarvesterRunner(None, None, None, None, None)
    assert runner.slice_size == 2048
    assert runner.undo_previous_slices is True
    assert runner.deletion is False
    assert runner.params == {}
    assert isinstance(runner.harvested_file_map, HarvesterMap) and not runner.harvested_file_map
    assert repr(runner) == "TalendHarvesterRunner()"


def test_executor_conversion():
    assert executor_conversion("job --base=%{base} --list=%{file_list}") == "job --base={base} --list={file_list}"
    assert executor_conversion("no placeholders") == "no placeholders"


def test_create_input_file_list(tmp_path, make_file):
    files = PipelineFileCollection([make_file("a.nc"), make_file("b.nc", dest_dir="X/Y")])
    path = create_input_file_list(str(tmp_path), files)
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith("file_list") and path.endswith(".txt")
    with open(path, newline="") as handle:
        assert handle.read() == f"IMOS/TEST/a.nc{os.linesep}X/Y/b.nc{os.linesep}"


def test_create_input_file_list_refuses_line_breaks(tmp_path):
    with pytest.raises(ValueError, match="line break"):
        create_input_file_list(str(tmp_path), ["ok/path", "evil\nextra/line"])


def test_create_symlink(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    source = tmp_path / "source.nc"
    source.write_text("x")
    link = create_symlink(str(base), str(source), "IMOS/deep/dir/file.nc")
    assert Path(link) == (base / "IMOS/deep/dir/file.nc").resolve() or Path(link) == base / "IMOS/deep/dir/file.nc"
    assert os.path.islink(link) and os.readlink(link) == str(source)
    # a '..' that stays inside the base dir is fine
    link = create_symlink(str(base), str(source), "IMOS/other/../kept.nc")
    assert os.path.islink(base / "IMOS/kept.nc")


@pytest.mark.parametrize("dest_path", ["/etc/evil.nc", "../escaped.nc", "IMOS/../../escaped.nc", "..", "", "IMOS/.."])
def test_create_symlink_refuses_escaping_paths(tmp_path, dest_path):
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(ValueError, match="refusing to create symlink"):
        create_symlink(str(base), str(tmp_path / "source.nc"), dest_path)
    assert not (tmp_path / "escaped.nc").exists()


def test_create_symlink_refuses_path_through_symlinked_dir(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, base / "link")
    with pytest.raises(ValueError, match="leads out"):
        create_symlink(str(base), str(tmp_path / "source.nc"), "link/file.nc")
    assert list(outside.iterdir()) == []


def test_trigger_event_and_harvester_map(make_file):
    a, b, c = make_file("a.nc"), make_file("b.nc"), make_file("c.nc")
    event1 = TriggerEvent(PipelineFileCollection([a, b]), "--x 1")
    event2 = TriggerEvent(PipelineFileCollection([b, c]))
    assert event1.extra_params == "--x 1" and event2.extra_params is None
    with pytest.raises(AttributeError):
        event1.extra_params = "no"
    with pytest.raises(TypeError):
        TriggerEvent([a])

    hmap = HarvesterMap()
    hmap.add_event("h1", event1)
    with pytest.raises(TypeError):
        hmap.add_event("h1", "not an event")
    with pytest.raises(TypeError):
        hmap.add_event(1, event1)
    other = HarvesterMap()
    other.add_event("h2", event2)
    other.add_event("h1", event2)
    hmap.merge(other)
    assert [name for name, _ in hmap] == ["h1", "h2"]
    assert hmap.map["h1"] == [event1, event2]
    assert list(hmap.all_events) == [event1, event2, event2]
    assert [f.name for f in hmap.all_pipeline_files] == ["a.nc", "b.nc", "c.nc"]
    assert hmap.is_collection_superset(PipelineFileCollection([a, c]))
    assert not hmap.is_collection_superset(PipelineFileCollection([a, make_file("d.nc")]))

    hmap.set_pipelinefile_bool_attribute("is_harvested", True)
    assert a.is_harvested and b.is_harvested and c.is_harvested


def test_validate_harvester_mapping(make_file):
    a, b = make_file("a.nc"), make_file("b.nc")
    hmap = HarvesterMap()
    hmap.add_event("h", TriggerEvent(PipelineFileCollection([a])))
    validate_harvester_mapping(PipelineFileCollection([a]), hmap)
    with pytest.raises(UnmappedFilesError, match=r"no matching harvester\(s\) found for: \[.*b\.nc'\]"):
        validate_harvester_mapping(PipelineFileCollection([a, b]), hmap)


# ---------------------------------------------------------------------------------------------------------------------
# Talend runner with real commands


def test_match_harvester_to_files_uses_config_order_and_dest_path(tmp_path, make_file):
    trigger = OrderedDict(
        [
            ("zzz", {"exec": "true", "events": [{"regex": [r"IMOS/ANMN/"]}]}),
            ("aaa", {"exec": "true", "events": [{"regex": ["nothing-matches"]},
                                                {"regex": [r"IMOS/SOOP/", r"IMOS/ANMN/x"], "extra_params": "-p"}]}),
            ("mmm", {"exec": "true", "events": [{"regex": [r"x\.nc"]}]}),  # re.match: anchored at the start
        ]
    )
    runner = TalendHarvesterRunner(None, None, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    x = make_file("x.nc", dest_dir="IMOS/ANMN")
    y = make_file("y.nc", dest_dir="IMOS/SOOP")
    hmap = runner.match_harvester_to_files(PipelineFileCollection([x, y]))
    assert [name for name, _ in hmap] == ["zzz", "aaa"]
    assert [f.name for f in hmap.map["zzz"][0].matched_files] == ["x.nc"]
    (aaa_event,) = hmap.map["aaa"]
    assert aaa_event.extra_params == "-p"
    assert [f.name for f in aaa_event.matched_files] == ["x.nc", "y.nc"]


def test_talend_additions_run_every_event_and_upload(tmp_path, store, broker, make_file, caplog):
    config = make_config(tmp_path, reference_trigger_config())
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), config, LOGGER)
    files = PipelineFileCollection([make_file("a.nc"), make_file("b.nc", publish_type=P.HARVEST_ONLY)])
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        runner.run(files)

    a, b = files
    assert a.is_harvested and b.is_harvested
    assert a.is_stored and a.published == "Yes"
    assert not b.is_stored and b.published == "Yes"
    assert (store / "IMOS/TEST/a.nc").read_text() == "content of a.nc\n"
    assert not (store / "IMOS/TEST/b.nc").exists()

    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER.name]
    outputs = [messages[i + 1] for i, m in enumerate(messages) if m == "--- START TALEND OUTPUT ---"]
    assert messages.count("--- END TALEND OUTPUT ---") == 4
    assert [o.split()[0] for o in outputs] == [
        "zzz_my_test_harvester", "aaa_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"
    ]
    assert "--collection my_test_collection" in outputs[1] and "--collection" not in outputs[2]
    assert f"logDir={tmp_path / 'talend_logs'}" in outputs[0]
    assert "fileList=" in outputs[0] and "base=" in outputs[0] and "%{" not in outputs[0]
    # the temporary talend base dirs are cleaned up
    assert not list(tmp_path.glob("talend_base*"))


def test_talend_symlinks_and_file_list_seen_by_command(tmp_path, broker, make_file):
    out = tmp_path / "seen.txt"
    trigger = {"h": {"exec": f"b=%{{base}}; l=%{{file_list}}; (cd $b && find . | sort; cat $l) >> {out}",
                     "events": [{"regex": ["IMOS/"]}]}}
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    files = PipelineFileCollection([make_file("a.nc", publish_type=P.HARVEST_ONLY, dest_dir="IMOS/A/B")])
    runner.run(files)
    seen = out.read_text().splitlines()
    assert "./IMOS/A/B/a.nc" in seen
    assert "IMOS/A/B/a.nc" in seen


def test_talend_unmapped_files(tmp_path, broker, make_file):
    trigger = {"h": {"exec": "true", "events": [{"regex": ["IMOS/ANMN/"]}]}}
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    files = PipelineFileCollection([make_file("a.nc", dest_dir="IMOS/ANMN"), make_file("b.nc", dest_dir="OTHER")])
    with pytest.raises(UnmappedFilesError, match=r"b\.nc"):
        runner.run(files)
    assert not any(f.is_harvested for f in files)


def test_talend_requires_collection(tmp_path):
    runner = TalendHarvesterRunner(None, None, str(tmp_path), make_config(tmp_path, {}), LOGGER)
    with pytest.raises(TypeError):
        runner.run([])


def test_talend_order_early_additions_late_and_store_deletions(tmp_path, store, broker, make_file,
                                                               recording_harvester):
    executor, calls = recording_harvester
    trigger = {"h": {"exec": executor, "events": [{"regex": ["IMOS/"]}]}}
    (store / "IMOS/TEST").mkdir(parents=True)
    for name in ("early.nc", "late.nc", "unharvest.nc"):
        (store / "IMOS/TEST" / name).write_text("old")
    files = PipelineFileCollection(
        [
            make_file("late.nc", publish_type=P.DELETE_UNHARVEST, is_deletion=True, late_deletion=True),
            make_file("new.nc", publish_type=P.HARVEST_UPLOAD),
            make_file("early.nc", publish_type=P.DELETE_UNHARVEST, is_deletion=True),
            make_file("unharvest.nc", publish_type=P.UNHARVEST_ONLY, is_deletion=True),
        ]
    )
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    runner.run(files)

    assert calls() == [
        ["delete", "IMOS/TEST/early.nc", "IMOS/TEST/unharvest.nc"],
        ["add", "IMOS/TEST/new.nc"],
        ["delete", "IMOS/TEST/late.nc"],
    ]
    late, new, early, unharvest = files
    assert all(f.is_harvested for f in files)
    assert early.is_deleted and late.is_deleted and new.is_uploaded
    assert not unharvest.is_stored  # UNHARVEST_ONLY does not touch the store
    assert not (store / "IMOS/TEST/early.nc").exists() and not (store / "IMOS/TEST/late.nc").exists()
    assert (store / "IMOS/TEST/unharvest.nc").exists()
    assert (store / "IMOS/TEST/new.nc").exists()


def test_talend_slices_failure_undoes_failing_and_previous_slices(tmp_path, store, broker, make_file,
                                                                  recording_harvester):
    executor, calls = recording_harvester
    trigger = {"h": {"exec": executor, "events": [{"regex": ["IMOS/"]}]}}
    files = PipelineFileCollection(
        [
            make_file("a.nc"),
            make_file("b.nc"),
            make_file("bad.nc"),
            make_file("later.nc"),
            make_file("late.nc", publish_type=P.DELETE_UNHARVEST, is_deletion=True, late_deletion=True),
        ]
    )
    runner = TalendHarvesterRunner(broker, {"slice_size": 1}, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    with pytest.raises(SystemCommandFailedError, match="harvest of bad file failed"):
        runner.run(files)

    a, b, bad, later, late = files
    assert calls() == [
        ["add", "IMOS/TEST/a.nc"],
        ["add", "IMOS/TEST/b.nc"],
        ["add", "IMOS/TEST/bad.nc"],
        ["delete", "IMOS/TEST/bad.nc"],  # the failing slice
        ["delete", "IMOS/TEST/a.nc"],  # then the previously harvested slices
        ["delete", "IMOS/TEST/b.nc"],
    ]
    for f in (a, b):
        assert f.is_harvested and f.is_harvest_undone and f.is_stored and f.is_upload_undone
        assert f.published == "No"
        assert not (store / "IMOS/TEST" / f.name).exists()
    assert not bad.is_harvested and bad.is_harvest_undone and not bad.is_stored
    assert not (store / "IMOS/TEST/bad.nc").exists()
    # later slices and late deletions are untouched
    assert not later.is_harvested and not later.should_undo and not later.is_stored
    assert not late.is_harvested


def test_talend_failure_without_undo_previous_slices(tmp_path, store, broker, make_file, recording_harvester):
    executor, calls = recording_harvester
    trigger = {"h": {"exec": executor, "events": [{"regex": ["IMOS/"]}]}}
    files = PipelineFileCollection([make_file("a.nc"), make_file("bad.nc")])
    params = {"slice_size": 1, "undo_previous_slices": False}
    runner = TalendHarvesterRunner(broker, params, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    with pytest.raises(SystemCommandFailedError):
        runner.run(files)
    a, bad = files
    assert calls()[-1] == ["delete", "IMOS/TEST/bad.nc"] and len(calls()) == 3
    assert a.is_harvested and not a.is_harvest_undone and a.is_stored and not a.is_upload_undone
    assert (store / "IMOS/TEST/a.nc").exists()
    assert bad.is_harvest_undone


def test_talend_failure_in_second_event_undoes_first_event_of_same_slice(tmp_path, store, broker, make_file):
    record = tmp_path / "first.txt"
    trigger = OrderedDict(
        [
            ("first", {"exec": 'b=%{base}; if [ -n "$(ls -A $b | grep -v file_list)" ]; then echo add >> '
                               f'{record}; else echo undo >> {record}; fi', "events": [{"regex": ["IMOS/"]}]}),
            ("second", {"exec": "b=%{base}; test -n \"$(ls -A $b | grep -v file_list)\" && exit 3 || true",
                        "events": [{"regex": ["IMOS/"]}]}),
        ]
    )
    params = {"undo_previous_slices": False}
    runner = TalendHarvesterRunner(broker, params, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    files = PipelineFileCollection([make_file("a.nc")])
    with pytest.raises(SystemCommandFailedError):
        runner.run(files)
    (a,) = files
    assert record.read_text().split() == ["add", "undo"]
    assert a.is_harvest_undone and a.is_upload_undone
    assert not (store / "IMOS/TEST/a.nc").exists()


def test_talend_multiple_events_upload_once(tmp_path, store, broker, make_file, monkeypatch):
    uploads = []
    original = broker.upload

    def counting_upload(pipeline_files, *args, **kwargs):
        uploads.append([f.name for f in pipeline_files])
        return original(pipeline_files, *args, **kwargs)

    monkeypatch.setattr(broker, "upload", counting_upload)
    config = make_config(tmp_path, reference_trigger_config())
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), config, LOGGER)
    runner.run(PipelineFileCollection([make_file("a.nc")]))
    assert uploads == [["a.nc"]]
    assert [name for name, _ in runner.harvested_file_map] == [
        "zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"
    ]


def test_talend_failure_output_logged_at_error(tmp_path, broker, make_file, caplog):
    trigger = {"h": {"exec": "echo something went wrong; false", "events": [{"regex": ["IMOS/"]}]}}
    runner = TalendHarvesterRunner(broker, None, str(tmp_path), make_config(tmp_path, trigger), LOGGER)
    with caplog.at_level(logging.INFO, logger=LOGGER.name), pytest.raises(SystemCommandFailedError):
        runner.run(PipelineFileCollection([make_file("a.nc")]))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("something went wrong" in m for m in errors)


# ---------------------------------------------------------------------------------------------------------------------
# NoHarvestRunner

NO_HARVEST_EXPECTATIONS = {
    # publish type: (stored by the runner, harvest skipped, published)
    P.NO_ACTION: (False, False, "No"),
    P.ARCHIVE_ONLY: (False, False, "No"),
    P.UPLOAD_ONLY: (True, False, "Yes"),
    P.HARVEST_ONLY: (False, True, "No"),
    P.HARVEST_ARCHIVE: (False, True, "No"),
    P.HARVEST_UPLOAD: (True, True, "No"),
    P.HARVEST_ARCHIVE_UPLOAD: (True, True, "No"),
    P.UNHARVEST_ONLY: (False, True, "No"),
    P.DELETE_ONLY: (True, False, "Yes"),
    P.DELETE_UNHARVEST: (True, True, "No"),
}


@pytest.mark.parametrize("publish_type", list(NO_HARVEST_EXPECTATIONS), ids=lambda p: p.name)
def test_no_harvest_runner_every_publish_type(publish_type, store, broker, make_file, caplog):
    stored, skipped, published = NO_HARVEST_EXPECTATIONS[publish_type]
    is_deletion = publish_type in PipelineFilePublishType.all_deletion_types and publish_type is not P.NO_ACTION
    (store / "IMOS/TEST").mkdir(parents=True)
    if is_deletion:
        (store / "IMOS/TEST/f.nc").write_text("old")
    pipeline_file = make_file("f.nc", publish_type=publish_type, is_deletion=is_deletion)
    runner = NoHarvestRunner(broker, None, LOGGER)

    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        runner.run(PipelineFileCollection([pipeline_file]))

    assert pipeline_file.is_harvested is False
    assert pipeline_file.is_stored is stored
    assert (pipeline_file in runner.stored_files) is stored
    assert (pipeline_file in runner.skipped_harvest_files) is skipped
    assert pipeline_file.published == published
    if is_deletion:
        assert (store / "IMOS/TEST/f.nc").exists() is not stored
    else:
        assert (store / "IMOS/TEST/f.nc").exists() is stored
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if skipped:
        assert len(warnings) == 1
        assert "harvest skipped" in warnings[0] and "f.nc" in warnings[0] and publish_type.name in warnings[0]
    else:
        assert warnings == []


def test_no_harvest_runner_one_warning_per_run_and_order(store, broker, make_file, caplog, monkeypatch):
    operations = []
    original_upload, original_delete = broker.upload, broker.delete
    monkeypatch.setattr(broker, "upload",
                        lambda files, *a, **k: (operations.append(("upload", [f.name for f in files])),
                                                original_upload(files, *a, **k)))
    monkeypatch.setattr(broker, "delete",
                        lambda files, *a, **k: (operations.append(("delete", [f.name for f in files])),
                                                original_delete(files, *a, **k)))
    files = PipelineFileCollection(
        [
            make_file("late.nc", publish_type=P.DELETE_ONLY, is_deletion=True, late_deletion=True),
            make_file("a.nc", publish_type=P.HARVEST_UPLOAD),
            make_file("b.nc", publish_type=P.HARVEST_ONLY),
            make_file("early.nc", publish_type=P.DELETE_UNHARVEST, is_deletion=True),
        ]
    )
    runner = NoHarvestRunner(broker, None, LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        runner.run(files)
    assert operations == [("delete", ["early.nc"]), ("upload", ["a.nc"]), ("delete", ["late.nc"])]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 file(s)" in warnings[0]
    assert sorted(f.name for f in runner.skipped_harvest_files) == ["a.nc", "b.nc", "early.nc"]
    assert sorted(f.name for f in runner.stored_files) == ["a.nc", "early.nc", "late.nc"]
    # a second run has nothing left to store and does not record anything twice
    runner.run(files)
    assert len(runner.stored_files) == 3


def test_talend_run_refuses_escaping_dest_path(tmp_path, broker, make_file, recording_harvester):
    executor, calls = recording_harvester
    trigger = {"h": {"exec": executor, "events": [{"regex": [".*"]}]}}
    work = tmp_path / "work"
    work.mkdir()
    evil = make_file("evil.nc", dest_dir="../../../outside")
    runner = TalendHarvesterRunner(broker, None, str(work), make_config(tmp_path, trigger), LOGGER)
    with pytest.raises(ValueError, match="escapes the harvester base dir"):
        runner.run(PipelineFileCollection([evil]))
    assert [call[0] for call in calls()] == ["delete"]  # only the undo ran; nothing was harvested
    assert not evil.is_harvested and not evil.is_stored
    assert not (tmp_path / "outside").exists() and not (tmp_path.parent / "outside").exists()

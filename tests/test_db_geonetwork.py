"""CSV harvester runsheet logic (with a recording stand-in for PostgreSQL), GeoNetwork client and XML helpers.

Here ``DatabaseInteractions`` is replaced by patching the module global
``aodncore.pipeline.steps.harvest.DatabaseInteractions`` (a supported patch target); the real database runs in
``test_compat_harvest_pg.py``. GeoNetwork is a small real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from xml.dom import minidom

import pytest

from aodncore.pipeline import PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.db import DatabaseInteractions
from aodncore.pipeline.exceptions import (
    GeonetworkConnectionError,
    GeonetworkRequestError,
    InvalidConfigError,
    InvalidHarvesterError,
    InvalidSQLConnectionError,
    InvalidSQLTransactionError,
    MissingConfigFileError,
    MissingConfigParameterError,
    UnexpectedCsvFilesError,
)
from aodncore.pipeline.geonetwork import (
    BASE_API,
    ENDPOINT_BATCH_UPDATE,
    ENDPOINT_RECORD_GET,
    Geonetwork,
    GeonetworkMetadataHandler,
    dict_to_xml,
    geonetwork_exception_handler,
)
from aodncore.pipeline.steps import harvest
from aodncore.pipeline.steps.harvest import CsvHarvesterRunner
from aodncore.pipeline.storage import LocalFileStorageBroker

LOGGER = logging.getLogger("aodncore.tests.csv")
DB_OBJECTS = [
    {"name": "trip", "type": "table"},
    {"name": "sample", "type": "table", "dependencies": ["trip"]},
    {"name": "trip_view", "type": "view", "dependencies": ["trip"]},
    {"name": "sample_map", "type": "materialized view", "dependencies": ["sample_view"]},
    {"name": "sample_view", "type": "view", "dependencies": ["sample"]},
]


class FakeDatabase:
    """Stands in for DatabaseInteractions: records the constructor arguments, transactions and task calls."""

    instances: list[FakeDatabase] = []
    fail_on: str | None = None

    def __init__(self, config, schema_base_path, logger=None):
        self.config, self.schema_base_path, self.logger = config, schema_base_path, logger
        self.calls: list[tuple[str, str]] = []
        self.status = "initiated"
        FakeDatabase.instances.append(self)

    def __enter__(self):
        self.status = "connected"
        return self

    def __exit__(self, exc_type, exc, tb):
        self.status = "committed" if exc_type is None else "rolled_back"
        return False

    def compare_schemas(self):
        return True

    def _task(name):  # noqa: N805 - helper building recording methods
        def task(self, step):
            if FakeDatabase.fail_on == name:
                raise InvalidSQLTransactionError(f"{name} failed")
            self.calls.append((name, step["name"]))

        task.__name__ = name
        return task

    drop_object = _task("drop_object")
    create_table_from_yaml_file = _task("create_table_from_yaml_file")
    load_data_from_csv = _task("load_data_from_csv")
    execute_sql_file = _task("execute_sql_file")
    truncate_table = _task("truncate_table")
    refresh_materialized_view = _task("refresh_materialized_view")


@pytest.fixture
def fake_db(monkeypatch):
    FakeDatabase.instances = []
    FakeDatabase.fail_on = None
    monkeypatch.setattr(harvest, "DatabaseInteractions", FakeDatabase)
    return FakeDatabase


@pytest.fixture
def harvester_config(tmp_path):
    config_dir = tmp_path / "harvester"
    (config_dir / "bgc").mkdir(parents=True)
    (config_dir / "bgc" / "database.json").write_text(json.dumps({"host": "db", "dbname": "harvest", "user": "u",
                                                                   "password": "pw"}))
    return SimpleNamespace(pipeline_config={"harvester": {"config_dir": str(config_dir),
                                                          "schema_base_dir": str(tmp_path / "schemas")}})


@pytest.fixture
def csv_file(tmp_path):
    source = tmp_path / "sources"
    source.mkdir()

    def _make(name, publish_type=PipelineFilePublishType.HARVEST_UPLOAD, is_deletion=False):
        path = source / name
        if not is_deletion:
            path.write_text("a,b\n1,2\n")
        return PipelineFile(str(path), dest_path=f"BGC/{name}", is_deletion=is_deletion, publish_type=publish_type)

    return _make


def params(**extra):
    return {"db_schema": "bgc", "db_objects": DB_OBJECTS, **extra}


# ---------------------------------------------------------------------------------------------------------------------
# CsvHarvesterRunner


def test_requires_db_objects(harvester_config, csv_file):
    runner = CsvHarvesterRunner(None, {}, harvester_config, LOGGER)
    assert runner.db_objects_raw is None and runner.db_objects is None
    with pytest.raises(MissingConfigParameterError) as excinfo:
        runner.run(PipelineFileCollection([csv_file("trip.csv")]))
    assert str(excinfo.value) == (
        'Generic CSV Harvester requires that the harvest_params["db_objects"] attribute be set'
    )


def test_dependencies_expanded_transitively():
    runner = CsvHarvesterRunner(None, params(), None, LOGGER)
    assert runner.db_objects_raw is DB_OBJECTS
    by_name = {obj["name"]: obj for obj in runner.db_objects}
    assert by_name["trip"] == {"name": "trip", "type": "table"}
    assert sorted(by_name["sample"]["dependencies"]) == ["trip"]
    assert sorted(by_name["sample_view"]["dependencies"]) == ["sample", "trip"]
    assert by_name["sample_map"]["dependencies"] == ["trip", "sample", "sample_view"]  # configuration order
    assert all(type(obj) is dict for obj in runner.db_objects)
    # the configuration itself is not modified
    assert DB_OBJECTS[3]["dependencies"] == ["sample_view"]


def test_dependency_cycle_and_unknown_dependency_are_clear_errors():
    objects = [{"name": "a", "type": "view", "dependencies": ["b"]},
               {"name": "b", "type": "view", "dependencies": ["c"]},
               {"name": "c", "type": "view", "dependencies": ["a"]}]
    with pytest.raises(InvalidHarvesterError, match=r"db_objects dependency cycle: a -> b -> c -> a"):
        CsvHarvesterRunner(None, {"db_schema": "s", "db_objects": objects}, None, LOGGER)
    selfish = [{"name": "a", "type": "view", "dependencies": ["a"]}]
    with pytest.raises(InvalidHarvesterError, match=r"cycle: a -> a"):
        CsvHarvesterRunner(None, {"db_schema": "s", "db_objects": selfish}, None, LOGGER)
    unknown = [{"name": "t", "type": "table"}, {"name": "v", "type": "view", "dependencies": ["T"]}]
    with pytest.raises(InvalidHarvesterError, match="'v' depends on 'T', which is not one of the db_objects"):
        CsvHarvesterRunner(None, {"db_schema": "s", "db_objects": unknown}, None, LOGGER)


def test_replace_runsheet_and_upload(tmp_path, fake_db, harvester_config, csv_file):
    store = tmp_path / "store"
    broker = LocalFileStorageBroker(str(store))
    files = PipelineFileCollection([csv_file("Sample.csv"),
                                    csv_file("trip.csv", publish_type=PipelineFilePublishType.HARVEST_ONLY)])
    runner = CsvHarvesterRunner(broker, params(), harvester_config, LOGGER)
    runner.run(files)

    (db,) = fake_db.instances
    assert db.config == {"host": "db", "dbname": "harvest", "user": "u", "password": "pw"}
    assert db.schema_base_path == str(tmp_path / "schemas")
    assert db.status == "committed"
    order = ["trip", "sample", "trip_view", "sample_map", "sample_view"]  # db_objects order
    expected = [(task, name) for name in order for task in
                ("drop_object", "create_table_from_yaml_file", "load_data_from_csv", "execute_sql_file")]
    assert db.calls == expected
    by_name = {obj["name"]: obj for obj in runner.db_objects}
    assert by_name["sample"]["local_path"] == files[0].local_path and by_name["sample"]["include"] is True
    assert "local_path" not in by_name["sample_view"]

    sample, trip = files
    assert sample.is_harvested and trip.is_harvested
    assert sample.is_stored and (store / "BGC/Sample.csv").exists()
    assert not trip.is_stored and not (store / "BGC/trip.csv").exists()


@pytest.mark.parametrize(
    ("ingest_type", "tasks"),
    [
        ("truncate", ("truncate_table", "load_data_from_csv", "refresh_materialized_view")),
        ("append", ("load_data_from_csv", "refresh_materialized_view")),
    ],
)
def test_other_ingest_types(fake_db, harvester_config, csv_file, ingest_type, tasks):
    runner = CsvHarvesterRunner(None, params(ingest_type=ingest_type), harvester_config, LOGGER)
    runner.run(PipelineFileCollection([csv_file("sample.csv", publish_type=PipelineFilePublishType.HARVEST_ONLY)]))
    (db,) = fake_db.instances
    assert db.calls == [(task, name) for name in ("sample", "sample_map", "sample_view") for task in tasks]


def test_unknown_ingest_type(fake_db, harvester_config, csv_file):
    runner = CsvHarvesterRunner(None, params(ingest_type="merge"), harvester_config, LOGGER)
    with pytest.raises(InvalidConfigError, match="No implementation for merge ingest_type"):
        runner.run(PipelineFileCollection([csv_file("trip.csv", publish_type=PipelineFilePublishType.HARVEST_ONLY)]))
    assert fake_db.instances[0].status == "rolled_back"


def test_unexpected_csv_files(fake_db, harvester_config, csv_file):
    runner = CsvHarvesterRunner(None, params(), harvester_config, LOGGER)
    # a view name is not a loadable table
    files = PipelineFileCollection([csv_file("trip.csv"), csv_file("unknown.csv"), csv_file("trip_view.csv")])
    with pytest.raises(UnexpectedCsvFilesError) as excinfo:
        runner.run(files)
    unexpected = [files[1].local_path, files[2].local_path]
    assert str(excinfo.value) == f"No db_objects match these pipeline files: {unexpected}"
    assert fake_db.instances == []
    assert not any(f.is_harvested for f in files)


def test_deletions_are_refused(fake_db, harvester_config, csv_file):
    runner = CsvHarvesterRunner(None, params(), harvester_config, LOGGER)
    deletion = csv_file("trip.csv", publish_type=PipelineFilePublishType.DELETE_UNHARVEST, is_deletion=True)
    with pytest.raises(InvalidHarvesterError, match="cannot un-harvest deletions.*trip.csv"):
        runner.run(PipelineFileCollection([deletion, csv_file("sample.csv")]))
    assert fake_db.instances == []
    assert not deletion.is_harvested


def test_database_error_rolls_back_and_nothing_is_marked(tmp_path, fake_db, harvester_config, csv_file):
    fake_db.fail_on = "load_data_from_csv"
    broker = LocalFileStorageBroker(str(tmp_path / "store"))
    files = PipelineFileCollection([csv_file("trip.csv")])
    with pytest.raises(InvalidSQLTransactionError):
        CsvHarvesterRunner(broker, params(), harvester_config, LOGGER).run(files)
    assert fake_db.instances[0].status == "rolled_back"
    assert not files[0].is_harvested and not files[0].is_stored


def test_missing_database_config(fake_db, tmp_path, csv_file):
    config = SimpleNamespace(pipeline_config={"harvester": {"config_dir": str(tmp_path / "none"),
                                                            "schema_base_dir": str(tmp_path)}})
    runner = CsvHarvesterRunner(None, params(), config, LOGGER)
    with pytest.raises(MissingConfigFileError, match="database.json"):
        runner.run(PipelineFileCollection([csv_file("trip.csv")]))


def test_metadata_updates(monkeypatch, fake_db, harvester_config, csv_file, tmp_path, caplog):
    (tmp_path / "harvester" / "bgc" / "metadata.json").write_text(json.dumps(
        {"metadata_url": "http://gn.example", "metadata_username": "admin", "metadata_password": "gnpw"}))
    sessions, handled = [], []

    class FakeGeonetwork:
        def __init__(self, url, user, password):
            sessions.append((url, user, password))

    class FakeHandler:
        def __init__(self, conn, _session, metadata, _logger):
            self.conn, self.metadata = conn, metadata

        def run(self):
            handled.append((self.conn, self.metadata))
            if self.metadata["uuid"] == "broken":
                raise ValueError("geonetwork said no")

    monkeypatch.setattr(harvest, "Geonetwork", FakeGeonetwork)
    monkeypatch.setattr(harvest, "GeonetworkMetadataHandler", FakeHandler)
    updates = [
        {"uuid": "u1", "spatial": {"table": "trip", "column": "geom", "resolution": 3},
         "temporal": {"table": "trip", "column": "time"}},
        {"uuid": "broken", "vertical": {"table": "sample", "column": "depth"}},
    ]
    runner = CsvHarvesterRunner(None, params(metadata_updates=updates), harvester_config, LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        runner.run(PipelineFileCollection([csv_file("trip.csv", publish_type=PipelineFilePublishType.HARVEST_ONLY)]))

    assert sessions == [("http://gn.example", "admin", "gnpw")]
    assert [m["uuid"] for _, m in handled] == ["u1", "broken"]
    assert handled[0][1]["spatial"]["db_schema"] == "bgc"
    assert "db_schema" not in updates[0]["spatial"]  # params not modified
    assert all(isinstance(conn, FakeDatabase) for conn, _ in handled)
    assert len(fake_db.instances) == 2  # the load, then one transaction for all updates
    assert handled[0][0] is handled[1][0]
    assert any(m.startswith("metadata update skipped") and "geonetwork said no" in m for m in caplog.messages)


def test_metadata_update_sql_errors_propagate(monkeypatch, fake_db, harvester_config, csv_file, tmp_path):
    (tmp_path / "harvester" / "bgc" / "metadata.json").write_text(json.dumps(
        {"metadata_url": "http://gn.example", "metadata_username": "admin", "metadata_password": "gnpw"}))

    class FailingHandler:
        def __init__(self, *args):
            pass

        def run(self):
            raise InvalidSQLConnectionError("db gone")

    monkeypatch.setattr(harvest, "Geonetwork", lambda *args: object())
    monkeypatch.setattr(harvest, "GeonetworkMetadataHandler", FailingHandler)
    runner = CsvHarvesterRunner(None, params(metadata_updates=[{"uuid": "u1"}]), harvester_config, LOGGER)
    with pytest.raises(InvalidSQLConnectionError):
        runner.run(PipelineFileCollection([csv_file("trip.csv", publish_type=PipelineFilePublishType.HARVEST_ONLY)]))


def test_database_interactions_without_psycopg2(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # makes 'import psycopg2' fail
    db = DatabaseInteractions({"host": "x", "password": "pw"}, "/tmp", LOGGER)
    assert db.status == "initiated" and "pw" not in repr(db)
    with pytest.raises(InvalidSQLConnectionError, match=r"aodncore\[db\]"), db:
        pass


# ---------------------------------------------------------------------------------------------------------------------
# XML and GeoNetwork


def test_dict_to_xml():
    assert dict_to_xml("a") == "<a>None</a>"  # never self-closing; a missing value renders as its str()
    assert dict_to_xml("a", value="x < y") == "<a>x < y</a>"  # nothing is escaped (raw GML goes in as is)
    assert dict_to_xml("a", value=0) == "<a>0</a>"
    assert dict_to_xml("a", value="v", attr={"k": 1, "j": 2}) == '<a k="1"  j="2">v</a>'
    assert dict_to_xml("a", display=False) == ""
    nested = dict_to_xml("root", value="ignored", attr={"v": 1}, elems=[
        {"tag": "child", "value": "one"},
        {"tag": "child", "elems": [{"tag": "grandchild", "value": 2}]},
        {"tag": "hidden", "display": False},
    ])
    assert nested == '<root v="1"><child>one</child><child><grandchild>2</grandchild></child></root>'
    minidom.parseString(nested)
    # list tags: nested wrappers, the innermost gets value/attr; display does not apply
    assert dict_to_xml(["a", "b"], value="v", attr={"k": 1, "j": 2}, display=False) == '<a><b k="1"  j="2">v</b></a>'


RECORD = (
    '<mdb:MD_Metadata xmlns:mdb="http://standards.iso.org/iso/19115/-3/mdb/2.0" '
    'xmlns:mri="http://standards.iso.org/iso/19115/-3/mri/1.0" '
    'xmlns:gex="http://standards.iso.org/iso/19115/-3/gex/1.0" '
    'xmlns:gco="http://standards.iso.org/iso/19115/-3/gco/1.0"><mdb:identificationInfo>'
    '<mri:MD_DataIdentification xmlns:gml="http://www.opengis.net/gml/3.2"/></mdb:identificationInfo></mdb:MD_Metadata>'
)


class GeonetworkStub(BaseHTTPRequestHandler):
    records = {"known-uuid": RECORD}
    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def _record(self, body=b""):
        GeonetworkStub.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                        "body": body})

    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self._record()
        self._reply(403, headers={"Set-Cookie": "XSRF-TOKEN=tok123; Path=/"})

    def do_GET(self):
        self._record()
        uuid = self.path.rsplit("/", 1)[-1]
        if self.headers.get("X-XSRF-TOKEN") != "tok123":
            self._reply(403)
        elif uuid in self.records:
            self._reply(200, self.records[uuid].encode())
        else:
            self._reply(404, b"not found")

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._record(body)
        self._reply(200 if self.headers.get("X-XSRF-TOKEN") == "tok123" else 403, b"<ok/>")


@pytest.fixture
def geonetwork_url():
    GeonetworkStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GeonetworkStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/geonetwork/"
    server.shutdown()
    server.server_close()


def test_geonetwork_get_record(geonetwork_url):
    gn = Geonetwork(geonetwork_url, "admin", "gnpw")
    assert "gnpw" not in repr(gn)
    assert gn.session.auth == ("admin", "gnpw") and gn.session.verify is True
    assert gn.session.headers["X-XSRF-TOKEN"] == "tok123"
    assert gn.get_record("known-uuid") == RECORD
    post, get = GeonetworkStub.requests
    assert post["method"] == "POST" and post["path"] == f"/geonetwork/{BASE_API}"
    assert get["path"] == f"/geonetwork/{BASE_API}/{ENDPOINT_RECORD_GET}/known-uuid"
    assert get["headers"]["Accept"] == "application/xml"
    assert get["headers"]["Authorization"] == "Basic " + base64.b64encode(b"admin:gnpw").decode()
    with pytest.raises(GeonetworkRequestError, match="404") as excinfo:
        gn.get_record("missing-uuid")
    assert str(excinfo.value) == str(excinfo.value.__cause__)


def test_geonetwork_connection_error_at_construction():
    with pytest.raises(GeonetworkConnectionError):
        Geonetwork("http://127.0.0.1:9/", "admin", "gnpw")


def test_exception_handler_is_a_context_manager_and_a_decorator():
    import requests

    with pytest.raises(GeonetworkConnectionError, match="^refused$"), geonetwork_exception_handler():
        raise requests.exceptions.ConnectionError("refused")
    with pytest.raises(GeonetworkRequestError, match="^slow$"), geonetwork_exception_handler():
        raise requests.exceptions.ReadTimeout("slow")
    with pytest.raises(KeyError), geonetwork_exception_handler():
        raise KeyError("other errors pass")

    @geonetwork_exception_handler()
    def fails():
        raise requests.exceptions.HTTPError("500 Server Error")

    with pytest.raises(GeonetworkRequestError, match="500"):
        fails()


def test_requests_is_a_module_global_patch_target(monkeypatch):
    from unittest import mock

    import aodncore.pipeline.geonetwork as geonetwork

    with mock.patch("aodncore.pipeline.geonetwork.requests.Session.post") as post:
        Geonetwork("http://gn.invalid/", "u", "p")
    assert post.call_args.args == ("http://gn.invalid/srv/api/0.1",)
    assert geonetwork.requests.Session is __import__("requests").Session


def test_metadata_handler_updates_extents(geonetwork_url, caplog):
    calls = []

    class Conn:
        def get_spatial_extent(self, **kwargs):
            calls.append(("spatial", kwargs))
            return {"boundingpolygonasgml3": '<gml:Polygon gml:id="p1"><gml:exterior>ring</gml:exterior></gml:Polygon>'}

        def get_temporal_extent(self, **kwargs):
            calls.append(("temporal", kwargs))
            return {"min_value": "2020-01-01T00:00:00", "max_value": "2020-12-31T23:59:59"}

        def get_vertical_extent(self, **kwargs):
            raise AssertionError("not configured: never queried")

    metadata = {"uuid": "known-uuid", "spatial": {"table": "trip", "column": "geom", "resolution": 3,
                                                  "db_schema": "bgc"},
                "temporal": {"table": "trip", "column": "time"}}
    gn = Geonetwork(geonetwork_url, "admin", "gnpw")
    handler = GeonetworkMetadataHandler(Conn(), gn, metadata, LOGGER)
    assert (handler.uuid, handler.vertical, handler.xml_text) == ("known-uuid", None, None)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        handler.run()
    assert calls == [("spatial", metadata["spatial"]), ("temporal", metadata["temporal"])]
    logged = [r.getMessage() for r in caplog.records if "extent data" in r.getMessage()]
    assert logged == ["Collecting extent data for known-uuid", "Updating extent data for known-uuid"]
    assert handler.xml_text == RECORD
    assert handler.get_namespace_dict() == {
        "xmlns:mri": "http://standards.iso.org/iso/19115/-3/mri/1.0",
        "xmlns:gex": "http://standards.iso.org/iso/19115/-3/gex/1.0",
        "xmlns:gco": "http://standards.iso.org/iso/19115/-3/gco/1.0",
        "xmlns:gml": "http://www.opengis.net/gml/3.2",
    }

    put = GeonetworkStub.requests[-1]
    assert put["method"] == "PUT"
    assert put["path"] == f"/geonetwork/{BASE_API}/{ENDPOINT_BATCH_UPDATE}?uuids=known-uuid"
    assert put["headers"]["content-type"] == "application/json"
    (change,) = json.loads(put["body"])
    assert list(change) == ["value", "xpath"]
    assert change["xpath"] == ".//mri:MD_DataIdentification/mri:extent"
    value = change["value"]
    document = minidom.parseString(value)  # well-formed, namespaces declared
    assert document.documentElement.tagName == "gn_replace"
    assert value.startswith('<gn_replace><gex:EX_Extent xmlns:mri=')
    assert '<gex:polygon><gml:Polygon gml:id="p1">' in value
    assert "<gml:beginPosition>2020-01-01T00:00:00</gml:beginPosition>" in value
    assert "<gml:endPosition>2020-12-31T23:59:59</gml:endPosition>" in value
    # no vertical data: the element is still there, empty -- never the text "None"
    assert "<gex:minimumValue><gco:Real></gco:Real></gex:minimumValue>" in value
    assert "None" not in value


def test_metadata_handler_without_extents_does_nothing():
    handler = GeonetworkMetadataHandler(None, None, metadata={}, logger=None)
    assert (handler.uuid, handler.spatial, handler.spatial_data, handler.xml_text) == (None, None, {}, None)
    handler.run()  # touches neither the database nor the session (both None)

"""CSV harvest against a real PostgreSQL (compat addendum §4, §6, §7.1): configuration loaded from JSON with
``load_json_file`` (write-once mappings at every level), resource-style YAML schemas, unquoted names, SQL files,
extents as mapping rows, and a handler run end to end with GeoNetwork on loopback."""

from __future__ import annotations

import json
import logging
import textwrap
import threading
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import psycopg2
import pytest

from aodncore.pipeline import HandlerBase, PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.common import FileType
from aodncore.pipeline.configlib import load_json_file
from aodncore.pipeline.db import DatabaseInteractions
from aodncore.pipeline.exceptions import InvalidConfigError, InvalidSQLTransactionError, MissingFileError
from aodncore.pipeline.steps.harvest import CsvHarvesterRunner
from aodncore.pipeline.storage import LocalFileStorageBroker
from aodncore.testlib import HandlerTestCase
from aodncore.testlib.testutil import GLOBAL_TEST_BASE, TESTLIB_CONF_DIR, load_runtime_patched_pipeline_config_file
from aodncore.util import WriteOnceOrderedDict

LOGGER = logging.getLogger("aodncore.tests.pg")

HARVEST_PARAMS = {
    "db_schema": "bgc",
    "db_objects": [
        {"name": "test_table", "type": "table"},
        {"name": "child", "type": "view", "dependencies": ["test_table"]},
        {"name": "grandchild", "type": "view", "dependencies": ["child"]},
        {"name": "cousin", "type": "view", "dependencies": ["test_table"]},
        {"name": "secondcousin", "type": "view", "dependencies": ["cousin"]},
        {"name": "greatgrandchild", "type": "materialized view", "dependencies": ["grandchild", "secondcousin"]},
    ],
    "metadata_updates": [{
        "uuid": "rec-1",
        "spatial": {"table": "test_table", "column": "geom", "resolution": 3},
        "temporal": {"table": "test_table", "column": "sample_time"},
        "vertical": {"table": "test_table", "column": "DEPTH"},
    }],
}
RESOURCE_YAML = textwrap.dedent("""\
    name: test_table
    schema:
      fields:
        - {name: SITE, type: string}
        - {name: SAMPLE_TIME, type: datetime}
        - {name: DEPTH, type: number}
        - {name: GEOM, type: string}
      primaryKey: [SITE, SAMPLE_TIME]
    """)
SQL_FILES = {
    "child.sql": "CREATE VIEW child AS SELECT site, depth FROM test_table;",
    "grandchild.sql": "CREATE VIEW grandchild AS SELECT site FROM child;",
    "cousin.sql": "CREATE VIEW cousin AS SELECT sample_time FROM test_table;",
    "secondcousin.sql": "CREATE VIEW secondcousin AS SELECT sample_time FROM cousin;",
    "greatgrandchild.sql": "CREATE MATERIALIZED VIEW greatgrandchild AS "
                           "SELECT count(*) AS n FROM grandchild, secondcousin;",
}
CSV_ROWS = ("SITE,SAMPLE_TIME,DEPTH,GEOM\n"
            "NRSMAI,2008-10-19 11:15:00+00,12.5,POINT(1 2)\n"
            "NRSMAI,2021-03-11 09:26:00+00,3.25,POINT(3 4)\n")


@pytest.fixture
def harvest_setup(tmp_path, postgres_db):
    """Schema folder, harvester config folder (database.json -> the test database) and WOOD harvest params."""
    schemas = tmp_path / "schemas"
    (schemas / "sql").mkdir(parents=True)
    (schemas / "test_table.resource.yaml").write_text(RESOURCE_YAML)
    (schemas / "test_table.schema.yaml").write_text("fields: not-a-list\n")  # sorts later: never used
    for name, sql in SQL_FILES.items():
        (schemas / "sql" / name).write_text(sql)
    config_dir = tmp_path / "harvester"
    (config_dir / "bgc").mkdir(parents=True)
    (config_dir / "bgc" / "database.json").write_text(json.dumps(postgres_db.connect_kwargs))
    params_file = tmp_path / "harvest_params.json"
    params_file.write_text(json.dumps(HARVEST_PARAMS))
    with psycopg2.connect(**postgres_db.connect_kwargs) as conn, conn.cursor() as cur:
        cur.execute("CREATE FUNCTION BoundingPolygonAsGml3(text, text, text, numeric) RETURNS text AS "
                    "$$ SELECT '<gml:Polygon>' || $1 || '.' || $2 || '.' || $3 || '@' || $4 || '</gml:Polygon>' $$ "
                    "LANGUAGE sql")
    conn.close()
    return SimpleNamespace(
        schemas=schemas, config_dir=config_dir, params=load_json_file(params_file), database=postgres_db,
        config=SimpleNamespace(pipeline_config={"harvester": {"config_dir": str(config_dir),
                                                              "schema_base_dir": str(schemas)}}),
    )


def _query(database, sql):
    with psycopg2.connect(**database.connect_kwargs) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def _csv(tmp_path, name="test_table.csv", body=CSV_ROWS) -> PipelineFile:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(body)
    return PipelineFile(str(path), dest_path=f"BGC/{name}", publish_type=PipelineFilePublishType.HARVEST_UPLOAD)


class GeonetworkServer(BaseHTTPRequestHandler):
    """A loopback GeoNetwork: hands out an XSRF token, serves one record, records batch edits."""

    record = ('<mdb:MD_Metadata xmlns:mdb="http://standards.iso.org/iso/19115/-3/mdb/2.0" '
              'xmlns:gex="http://standards.iso.org/iso/19115/-3/gex/1.0" '
              'xmlns:gml="http://www.opengis.net/gml/3.2"/>')
    edits: list = []

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self._reply(403, headers=[("Set-Cookie", "XSRF-TOKEN=t0k; Path=/")])

    def do_GET(self):
        self._reply(200, self.record.encode())

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        GeonetworkServer.edits.append((self.path, self.headers.get("X-XSRF-TOKEN"), json.loads(body)))
        self._reply(200)


@pytest.fixture
def geonetwork(harvest_setup):
    GeonetworkServer.edits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GeonetworkServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (harvest_setup.config_dir / "bgc" / "metadata.json").write_text(json.dumps({
        "metadata_url": f"http://127.0.0.1:{server.server_address[1]}/geonetwork",
        "metadata_username": "admin", "metadata_password": "secret"}))
    yield GeonetworkServer
    server.shutdown()
    server.server_close()


# -- configuration from load_json_file ----------------------------------------------------------------------------

def test_write_once_config_gives_plain_dependency_trees(harvest_setup):
    params = harvest_setup.params
    assert isinstance(params["db_objects"][0], WriteOnceOrderedDict)
    runner = CsvHarvesterRunner(None, params, harvest_setup.config, LOGGER)
    assert all(type(obj) is dict for obj in runner.db_objects)
    by_name = {obj["name"]: obj for obj in runner.db_objects}
    assert by_name["greatgrandchild"]["dependencies"] == ["test_table", "child", "grandchild", "cousin",
                                                          "secondcousin"]
    assert by_name["test_table"] == {"name": "test_table", "type": "table"}
    assert params["db_objects"][5]["dependencies"] == ["grandchild", "secondcousin"]  # the caller's objects untouched


def test_process_sequence_names():
    runner = CsvHarvesterRunner(None, {"ingest_type": "truncate"}, None, LOGGER)
    conn = mock.Mock()
    conn.compare_schemas.return_value = True
    assert runner.get_process_sequence(conn) == ["truncate_table", "load_data_from_csv", "refresh_materialized_view"]
    conn.compare_schemas.return_value = False
    assert runner.get_process_sequence(conn) == ["drop_object", "create_table_from_yaml_file", "load_data_from_csv",
                                                 "execute_sql_file"]
    runner = CsvHarvesterRunner(None, {"ingest_type": "append"}, None, LOGGER)
    conn.compare_schemas.return_value = True
    first = runner.get_process_sequence(conn)
    assert first == ["load_data_from_csv", "refresh_materialized_view"]
    assert first is not runner.get_process_sequence(conn)  # a new list each call
    with pytest.raises(InvalidConfigError, match="No implementation for merge ingest_type"):
        CsvHarvesterRunner(None, {"ingest_type": "merge"}, None, LOGGER).get_process_sequence(conn)


# -- the harvest itself --------------------------------------------------------------------------------------------

def test_replace_harvest_twice_with_the_same_write_once_params(harvest_setup, geonetwork, tmp_path):
    broker = LocalFileStorageBroker(str(tmp_path / "store"))
    for run in (1, 2):
        pipeline_file = _csv(tmp_path)
        runner = CsvHarvesterRunner(broker, harvest_setup.params, harvest_setup.config, LOGGER)
        runner.run(PipelineFileCollection([pipeline_file]))
        assert pipeline_file.is_harvested and pipeline_file.is_stored
        # unquoted names: YAML fields SITE/DEPTH are the columns site/depth the SQL files use
        assert _query(harvest_setup.database, "SELECT site, depth FROM child ORDER BY depth") == [
            ("NRSMAI", Decimal("3.25")), ("NRSMAI", Decimal("12.5"))]
        assert _query(harvest_setup.database, "SELECT n FROM greatgrandchild") == [(4,)]
        assert len(geonetwork.edits) == run  # metadata updated on every run (params copied, never written)
    assert "db_schema" not in harvest_setup.params["metadata_updates"][0]["spatial"]

    path, token, [change] = geonetwork.edits[-1]
    assert path == "/geonetwork/srv/api/0.1/records/batchediting?uuids=rec-1" and token == "t0k"
    value = change["value"]
    assert "<gex:polygon><gml:Polygon>bgc.test_table.geom@3</gml:Polygon></gex:polygon>" in value
    assert "<gml:beginPosition>2008-10-19T11:15:00</gml:beginPosition>" in value  # HH:MM:SS, not month
    assert "<gml:endPosition>2021-03-11T09:26:00</gml:endPosition>" in value
    assert "<gex:minimumValue><gco:Real>3.25</gco:Real></gex:minimumValue>" in value
    assert 'xmlns:gex="http://standards.iso.org/iso/19115/-3/gex/1.0"' in value


def test_a_failing_statement_rolls_back_everything(harvest_setup, tmp_path, caplog):
    bad = _csv(tmp_path, body="SITE,SAMPLE_TIME,DEPTH,GEOM\nNRSMAI,not-a-time,1,x\n")
    runner = CsvHarvesterRunner(LocalFileStorageBroker(str(tmp_path / "store")), harvest_setup.params,
                                harvest_setup.config, LOGGER)
    with caplog.at_level(logging.INFO, logger=LOGGER.name), pytest.raises(InvalidSQLTransactionError):
        runner.run(PipelineFileCollection([bad]))
    assert "Rolling back changes" in caplog.messages
    assert _query(harvest_setup.database, "SELECT to_regclass('test_table')") == [(None,)]
    assert not bad.is_harvested and not bad.is_stored


# -- DatabaseInteractions directly --------------------------------------------------------------------------------

def test_database_interactions_tasks(harvest_setup, tmp_path, caplog):
    db = DatabaseInteractions(config=dict(harvest_setup.database.connect_kwargs),
                              schema_base_path=str(harvest_setup.schemas), logger=LOGGER)
    assert db.status == "initiated" and db._conn is None and db._cur is None
    with caplog.at_level(logging.INFO, logger=LOGGER.name), db:
        assert db._conn is not None and db._cur is not None and db.status == "connected"
        db.create_table_from_yaml_file({"name": "no_yaml_here", "type": "table"})  # silently nothing
        db.create_table_from_yaml_file({"name": "test_table", "type": "view"})  # not a table: nothing
        db.execute_sql_file({"name": "no_sql_here", "type": "view"})  # nothing, whatever the type
        db.create_table_from_yaml_file({"name": "test_table", "type": "table"})
        db.load_data_from_csv({"name": "test_table", "type": "table", "local_path": _csv(tmp_path).src_path})
        db.load_data_from_csv({"name": "test_table", "type": "table"})  # no local_path: nothing
        with pytest.raises(MissingFileError):
            db.load_data_from_csv({"name": "test_table", "local_path": str(tmp_path / "gone.csv")})

        temporal = db.get_temporal_extent(table="test_table", column="sample_time")
        assert (temporal["min_value"], temporal["max_value"]) == ("2008-10-19T11:15:00", "2021-03-11T09:26:00")
        assert temporal[0] == "2008-10-19T11:15:00" and set(temporal.keys()) == {"min_value", "max_value"}
        vertical = db.get_vertical_extent(table="test_table", column="DEPTH")
        assert vertical.get("min_value") == Decimal("3.25") and vertical[1] == Decimal("12.5")
        spatial = db.get_spatial_extent(db_schema="bgc", table="test_table", column="geom", resolution=3)
        assert spatial["boundingpolygonasgml3"] == "<gml:Polygon>bgc.test_table.geom@3</gml:Polygon>"

        db.execute_sql_file({"name": "child", "type": "view"})
        db.drop_object({"name": "child", "type": "view"})
        db.truncate_table({"name": "test_table", "type": "table"})
        empty = db.get_temporal_extent("test_table", "sample_time")
        assert (empty["min_value"], empty["max_value"]) == (None, None)
        with pytest.raises(InvalidSQLTransactionError, match="not a plain SQL name"):
            db.truncate_table({"name": "test_table; DROP TABLE x", "type": "table"})
    assert db.status == "committed"
    assert "Dropping view child" in caplog.messages and "Committing changes" in caplog.messages
    columns = _query(harvest_setup.database, "SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'test_table' ORDER BY ordinal_position")
    assert columns == [("site",), ("sample_time",), ("depth",), ("geom",)]
    assert _query(harvest_setup.database, "SELECT to_regclass('no_yaml_here')") == [(None,)]


# -- through a handler ---------------------------------------------------------------------------------------------

class BgcHandler(HandlerBase):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.HARVEST_UPLOAD

    def preprocess(self):
        for pipeline_file in self.file_collection:
            if pipeline_file.file_type is FileType.CSV:
                pipeline_file.check_type = pipeline_file.check_type.NONEMPTY_CHECK


BgcCsvHandler = partial(BgcHandler, harvest_type="csv", dest_path_function=lambda path: f"BGC/{Path(path).name}")


@pytest.fixture
def handler_setup(request, harvest_setup, geonetwork):
    request.cls.harvest_setup = harvest_setup


@pytest.mark.usefixtures("handler_setup")
class TestCsvHarvestThroughAHandler(HandlerTestCase):
    handler_class = BgcCsvHandler

    def test_handler_harvests_with_params_from_a_json_file(self):
        setup = self.harvest_setup
        self.config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
            str(Path(TESTLIB_CONF_DIR, "pipeline.conf")), GLOBAL_TEST_BASE, self.temp_dir,
            additional_patch={"harvester": {"config_dir": str(setup.config_dir),
                                            "schema_base_dir": str(setup.schemas)}})
        for _ in range(2):  # the same write-once params object serves two handler runs
            csv = Path(self.temp_dir, "test_table.csv")
            csv.write_text(CSV_ROWS)
            handler = self.run_handler(str(csv), harvest_params=setup.params)
            [published] = handler.file_collection
            assert published.is_harvested and published.is_stored
            assert published.dest_path == "BGC/test_table.csv"
        assert _query(setup.database, "SELECT count(*) FROM secondcousin") == [(2,)]
        assert len(GeonetworkServer.edits) == 2

"""One classic handler class, unchanged, gives the same published result under ``HandlerBase.run()`` and under
the ``ingest_file`` Prefect flow; the S3 endpoint can come from the configuration."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ingest_helpers import IMOS_DIR, ClassicStyleHandler

from aodncore.ingest.configure import apply_s3_endpoint, load_config
from aodncore.pipeline.defaultconfig import default_config, default_pipeline_config

GOOD = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"


def _published_tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_classic_handler_gives_the_same_result_in_both_drivers(prefect_harness, tmp_path):
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_file

    # driver 1: the classic state machine
    classic_base = tmp_path / "classic"
    source = Path(shutil.copy(IMOS_DIR / GOOD, tmp_path / GOOD))
    handler = ClassicStyleHandler(str(source), config=default_config(classic_base))
    handler.run()
    assert handler.error is None, handler.error_details

    # driver 2: the Prefect flow, naming the same class
    flow_base = tmp_path / "flow"
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        outcome = ingest_file(str(landing / GOOD), handler="ingest_helpers:ClassicStyleHandler",
                              base_dir=str(flow_base), settle_seconds=0)
    assert outcome["status"] == "published", outcome

    classic_tree = _published_tree(classic_base / "published")
    flow_tree = _published_tree(flow_base / "published")
    assert set(classic_tree) == {f"CLASSIC/{GOOD}", f"CLASSIC/products/{GOOD}.summary.txt"}
    assert flow_tree == classic_tree
    assert flow_tree[f"CLASSIC/{GOOD}"] == (IMOS_DIR / GOOD).read_bytes()
    assert not (landing / GOOD).exists()  # published, so removed from the landing area


def test_s3_endpoint_from_the_config_unless_the_environment_sets_one(tmp_path, monkeypatch):
    config_file = tmp_path / "pipeline.conf"
    pipeline_config = default_pipeline_config(tmp_path / "data")
    pipeline_config["global"]["s3_endpoint_url"] = "http://127.0.0.1:9999"
    config_file.write_text(json.dumps(pipeline_config))

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert apply_s3_endpoint(load_config(str(config_file))) == "http://127.0.0.1:9999"
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9999"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1234")
    assert apply_s3_endpoint(load_config(str(config_file))) == "http://127.0.0.1:1234"

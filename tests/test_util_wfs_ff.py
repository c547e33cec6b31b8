"""Tests for aodncore.util.wfs (owslib patched at the documented module global) and aodncore.util.ff."""

from __future__ import annotations

import io
import json
import warnings
from unittest import mock

import pytest
from owslib.fes import And, PropertyIsEqualTo

from aodncore.pipeline.exceptions import InvalidSchemaError
from aodncore.util import wfs
from aodncore.util.external import IndexedSet
from aodncore.util.ff import get_field_type, get_tableschema_descriptor
from aodncore.util.wfs import (
    DEFAULT_WFS_VERSION,
    WfsBroker,
    get_ogc_expression_for_file_url,
    ogc_filter_to_string,
)

FEATURES = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"url": "IMOS/ANMN/a.nc"}},
        {"type": "Feature", "properties": {"url": "IMOS/ANMN/b.nc"}},
        {"type": "Feature", "properties": {"url": "IMOS/ANMN/a.nc"}},
    ],
}


class _Response(io.BytesIO):
    closed_called = False

    def close(self):
        type(self).closed_called = True
        super().close()


def test_default_version():
    assert DEFAULT_WFS_VERSION == "1.1.0"


def test_ogc_filter_to_string():
    assert ogc_filter_to_string("<already/>") == "<already/>"
    expression = get_ogc_expression_for_file_url("IMOS/x.nc")
    xml = ogc_filter_to_string(expression)
    assert "PropertyName>url<" in xml and "Literal>IMOS/x.nc<" in xml
    combined = ogc_filter_to_string(And([expression, PropertyIsEqualTo(propertyname="site", literal="NRSMAI")]))
    assert "And" in combined and "NRSMAI" in combined


def test_get_ogc_expression_property_name():
    xml = ogc_filter_to_string(get_ogc_expression_for_file_url("f.nc", property_name="file_url"))
    assert "PropertyName>file_url<" in xml


def test_wfs_is_created_lazily_from_module_global():
    with mock.patch("aodncore.util.wfs.WebFeatureService") as patched:
        broker = WfsBroker("http://example.invalid/wfs")
        patched.assert_not_called()
        service = broker.wfs
        assert broker.wfs is service
        patched.assert_called_once_with("http://example.invalid/wfs", version=DEFAULT_WFS_VERSION)


def _patched_broker(schema_properties=("url",)):
    patcher = mock.patch.object(wfs, "WebFeatureService")
    patched = patcher.start()
    service = patched.return_value
    service.get_schema.return_value = {"properties": {name: "string" for name in schema_properties}}
    service.getfeature.side_effect = lambda **kwargs: _Response(json.dumps(FEATURES).encode())
    return patcher, service, WfsBroker("http://example.invalid/wfs", version="2.0.0")


def test_getfeature_dict_and_query_files():
    patcher, service, broker = _patched_broker()
    try:
        _Response.closed_called = False
        result = broker.getfeature_dict("layer_a", get_ogc_expression_for_file_url("IMOS/ANMN/a.nc"), extra=1)
        assert result["features"][0]["properties"]["url"] == "IMOS/ANMN/a.nc"
        assert _Response.closed_called
        kwargs = service.getfeature.call_args.kwargs
        assert kwargs["typename"] == "layer_a" and kwargs["outputFormat"] == "json" and kwargs["extra"] == 1
        assert "IMOS/ANMN/a.nc" in kwargs["filter"]

        files = broker.query_files("layer_a")
        assert isinstance(files, IndexedSet)
        assert list(files) == ["IMOS/ANMN/a.nc", "IMOS/ANMN/b.nc"]
        assert service.getfeature.call_args.kwargs["propertyname"] == "url"

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert list(broker.query_urls_for_layer("layer_a")) == ["IMOS/ANMN/a.nc", "IMOS/ANMN/b.nc"]
        assert any(issubclass(w.category, DeprecationWarning) for w in caught)

        assert broker.query_file_exists("layer_a", "IMOS/ANMN/b.nc")
        assert not broker.query_file_exists("layer_a", "IMOS/ANMN/zzz.nc")
    finally:
        patcher.stop()


def test_url_property_name_detection():
    patcher, _, broker = _patched_broker(schema_properties=("file_url", "url"))
    try:
        assert broker.get_url_property_name("l") == "file_url"
        broker.url_propertyname_candidates = ("url",)
        assert broker.get_url_property_name("l") == "url"
    finally:
        patcher.stop()
    patcher, _, broker = _patched_broker(schema_properties=("other",))
    try:
        with pytest.raises(RuntimeError):
            broker.get_url_property_name("l")
    finally:
        patcher.stop()


def test_get_field_type():
    assert [get_field_type(t) for t in ("integer", "string", "any", "number", "datetime", "date", "boolean")] == [
        "int", "varchar", "varchar", "numeric", "timestamp", "date", "boolean"]


def test_get_tableschema_descriptor():
    schema = {"fields": [{"name": "site", "type": "string"}, {"name": "depth", "type": "number"}]}
    descriptor = get_tableschema_descriptor({"schema": schema}, "schema")
    assert [f["name"] for f in descriptor["fields"]] == ["site", "depth"]
    assert descriptor["fields"][0]["format"] == "default"  # expanded
    # the object itself is used when the name is absent
    assert get_tableschema_descriptor(schema, "missing")["fields"][1]["type"] == "number"


@pytest.mark.parametrize("bad", [{"schema": {"fields": "nope"}}, {"schema": {"fields": [{"name": "a", "type": "x"}]}}])
def test_get_tableschema_descriptor_invalid(bad):
    with pytest.raises(InvalidSchemaError, match="Schema definition does not meet the tableschema standard"):
        get_tableschema_descriptor(bad, "schema")

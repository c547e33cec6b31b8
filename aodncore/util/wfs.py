"""Query an OGC Web Feature Service (through owslib) for the file URLs indexed in a layer.

``WebFeatureService`` is a module global looked up when :attr:`WfsBroker.wfs` is first read, so tests can patch
``aodncore.util.wfs.WebFeatureService``.
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from typing import Any

from owslib.etree import etree
from owslib.fes import PropertyIsEqualTo
from owslib.wfs import WebFeatureService

from aodncore.util.external import IndexedSet, lazyproperty

__all__ = ["DEFAULT_WFS_VERSION", "WfsBroker", "get_ogc_expression_for_file_url", "ogc_filter_to_string"]

DEFAULT_WFS_VERSION = "1.1.0"


def ogc_filter_to_string(ogc_expression: Any) -> str:
    """Serialise an owslib filter expression to XML text (strings are returned unchanged)."""
    if isinstance(ogc_expression, str):
        return ogc_expression
    return etree.tostring(ogc_expression.toXML(), encoding="unicode")


def get_ogc_expression_for_file_url(file_url: str, property_name: str = "url") -> PropertyIsEqualTo:
    """Filter expression selecting features whose ``property_name`` equals ``file_url``."""
    return PropertyIsEqualTo(literal=file_url, propertyname=property_name)


class WfsBroker:
    """Thin helper around an owslib ``WebFeatureService`` connection (created on first use)."""

    url_propertyname_candidates: tuple[str, ...] = ("file_url", "url")

    def __init__(self, wfs_url: str, version: str = DEFAULT_WFS_VERSION) -> None:
        self._wfs_url = wfs_url
        self._version = version

    @lazyproperty
    def wfs(self) -> Any:
        """The owslib service object (connected lazily, then cached)."""
        return WebFeatureService(self._wfs_url, version=self._version)

    def getfeature_dict(self, layer: str, ogc_expression: Any = None, **kwargs: Any) -> OrderedDict:
        """Run a GetFeature request on ``layer`` and return the parsed GeoJSON response."""
        params = dict(kwargs)
        if ogc_expression is not None:
            params["filter"] = ogc_filter_to_string(ogc_expression)
        params["outputFormat"] = "json"
        params["typename"] = layer
        response = self.wfs.getfeature(**params)
        try:
            return json.loads(response.getvalue(), object_pairs_hook=OrderedDict)
        finally:
            response.close()

    def get_url_property_name(self, layer: str) -> str:
        """The first of :attr:`url_propertyname_candidates` present in the layer schema."""
        properties = self.wfs.get_schema(layer)["properties"]
        present = [name for name in self.url_propertyname_candidates if name in properties]
        if present:
            return present[0]
        raise RuntimeError(f"unable to determine the URL property name for layer '{layer}' "
                           f"(tried {list(self.url_propertyname_candidates)})")

    def query_files(self, layer: str, ogc_expression: Any = None, url_property_name: str | None = None) -> IndexedSet:
        """The URL property values of every feature in ``layer`` (optionally filtered)."""
        property_name = url_property_name or self.get_url_property_name(layer)
        features = self.getfeature_dict(layer, ogc_expression, propertyname=property_name)["features"]
        return IndexedSet(feature["properties"][property_name] for feature in features)

    def query_urls_for_layer(self, layer: str, ogc_expression: Any = None,
                             url_property_name: str | None = None) -> IndexedSet:
        """Deprecated alias of :meth:`query_files`."""
        warnings.warn("query_urls_for_layer is deprecated; use query_files", DeprecationWarning, stacklevel=2)
        return self.query_files(layer, ogc_expression, url_property_name)

    def query_file_exists(self, layer: str, name: str) -> bool:
        """True if a feature of ``layer`` has ``name`` as its URL property."""
        property_name = self.get_url_property_name(layer)
        expression = get_ogc_expression_for_file_url(name, property_name=property_name)
        return name in self.query_files(layer, expression, url_property_name=property_name)

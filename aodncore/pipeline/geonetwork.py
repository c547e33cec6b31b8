"""Update the extents of GeoNetwork metadata records from the data loaded by the CSV harvester.

The module global ``requests`` (a supported patch target, e.g. ``aodncore.pipeline.geonetwork.requests.Session.get``)
is imported on first use, keeping ``import aodncore.pipeline`` fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping
from io import StringIO
from typing import Any

from aodncore.pipeline.exceptions import GeonetworkConnectionError, GeonetworkRequestError
from aodncore.util.misc import generate_id

__all__ = [
    "BASE_API",
    "ENDPOINT_BATCH_UPDATE",
    "ENDPOINT_RECORD_GET",
    "EXTENT_XPATH",
    "Geonetwork",
    "GeonetworkMetadataHandler",
    "dict_to_xml",
    "geonetwork_exception_handler",
]

BASE_API = "srv/api/0.1"
ENDPOINT_RECORD_GET = "records"
ENDPOINT_BATCH_UPDATE = "records/batchediting"
EXTENT_XPATH = ".//mri:MD_DataIdentification/mri:extent"
#: namespace prefixes of the record copied onto the replacement extent element
EXTENT_NAMESPACE_PREFIXES = ("mri", "gex", "gml", "gco")
REQUEST_TIMEOUT = 60
_LOGGER = logging.getLogger(__name__)


def _requests() -> Any:
    """The module global ``requests`` (importing it on first use; a patched global is returned as patched)."""
    module = globals().get("requests")
    if module is None:
        import requests as module

        globals()["requests"] = module
    return module


def __getattr__(name: str) -> Any:
    if name == "requests":
        return _requests()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def geonetwork_exception_handler() -> Iterator[None]:
    """Inside it, ``requests`` failures become GeoNetwork errors (also usable as a decorator when called).

    Connection failures (refused, DNS, proxy, SSL, connect timeout) raise :class:`GeonetworkConnectionError`; every
    other ``requests`` error (HTTP status, read timeout, bad URL) :class:`GeonetworkRequestError`. ``str()`` of the
    new error is that of the original. Other exceptions pass unchanged.
    """
    requests = _requests()
    try:
        yield
    except requests.exceptions.ConnectionError as exc:
        raise GeonetworkConnectionError(exc) from exc
    except requests.exceptions.RequestException as exc:
        raise GeonetworkRequestError(exc) from exc


def _attributes(attr: Mapping[str, Any] | None) -> str:
    # each attribute is " key=\"value\"", and the pieces are joined by one more space
    return " ".join(f' {key}="{value}"' for key, value in (attr or {}).items())


def dict_to_xml(
    tag: str | list[str],
    value: Any = None,
    attr: Mapping[str, Any] | None = None,
    elems: Iterable[Mapping[str, Any]] | None = None,
    display: bool = True,
) -> str:
    """Render one XML element (and, recursively, its children) as text; nothing is escaped.

    ``elems`` are child elements, each a mapping of this function's keyword arguments; when there are any, ``value``
    is ignored, else the text is ``str(value)``. A list ``tag`` renders nested wrapper elements, outermost first,
    the innermost holding ``value``/``attr``/``elems`` (``display`` does not apply to list tags). Otherwise
    ``display=False`` renders nothing. Elements are never self-closing.
    """
    if isinstance(tag, list | tuple):
        *wrappers, innermost = tag
        text = dict_to_xml(innermost, value=value, attr=attr, elems=elems)
        for wrapper in reversed(wrappers):
            text = f"<{wrapper}>{text}</{wrapper}>"
        return text
    if not display:
        return ""
    children = [elems] if isinstance(elems, Mapping) else list(elems or [])
    text = "".join(dict_to_xml(**child) for child in children) if children else str(value)
    return f"<{tag}{_attributes(attr)}>{text}</{tag}>"


class Geonetwork:
    """A GeoNetwork API session. Construction contacts the server (to receive its XSRF token)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        requests = _requests()
        self.base_url = base_url
        self.session = requests.Session()
        credentials = (username, password)
        self.session.auth = credentials  # a plain tuple: clients compare it
        self.session.verify = True
        self.session.headers.update({"Accept": "application/xml"})
        with geonetwork_exception_handler():
            # GeoNetwork answers a first (unauthorised) POST with an XSRF-TOKEN cookie; its status does not matter
            self.session.post(os.path.join(self.base_url, BASE_API), timeout=REQUEST_TIMEOUT)
        token = self.session.cookies.get("XSRF-TOKEN")
        if token:
            self.session.headers["X-XSRF-TOKEN"] = token

    def __repr__(self) -> str:
        return f"Geonetwork(base_url={self.base_url!r})"

    def get_record(self, _uuid: str) -> str:
        """The XML text of record ``_uuid``."""
        with geonetwork_exception_handler():
            response = self.session.get(os.path.join(self.base_url, BASE_API, ENDPOINT_RECORD_GET, _uuid),
                                        timeout=REQUEST_TIMEOUT)
            response.raise_for_status()
            return response.text

    def update_record(self, _uuid: str, changes: list[dict]) -> None:
        """Apply batch-editing ``changes`` (``[{"value": ..., "xpath": ...}]``) to record ``_uuid``."""
        with geonetwork_exception_handler():
            response = self.session.put(
                os.path.join(self.base_url, BASE_API, ENDPOINT_BATCH_UPDATE),
                params={"uuids": _uuid},
                headers={"accept": "application/json", "content-type": "application/json"},
                data=json.dumps(changes),
                timeout=REQUEST_TIMEOUT,
            )
            response.raise_for_status()


def _text(value: Any) -> str:
    """Element text of an extent value: an extent without data is sent empty (never the text ``None``)."""
    return "" if value is None else str(value)


class GeonetworkMetadataHandler:
    """Compute the extents of one metadata update (``spatial``/``temporal``/``vertical``) and write them.

    ``metadata`` is one entry of ``harvest_params['metadata_updates']`` (with ``db_schema`` added to ``spatial``).
    Construction touches nothing; :meth:`run` queries the database, reads the record and replaces its extent.
    """

    def __init__(self, conn: Any, session: Any, metadata: Mapping[str, Any] | None, logger: Any = None) -> None:
        self._conn = conn
        self._session = session
        self._logger = logger if logger is not None else _LOGGER
        metadata = metadata or {}
        self.uuid = metadata.get("uuid")
        self.spatial = metadata.get("spatial")
        self.temporal = metadata.get("temporal")
        self.vertical = metadata.get("vertical")
        self.spatial_data: Any = {}
        self.temporal_data: Any = {}
        self.vertical_data: Any = {}
        self.xml_text: str | None = None

    def get_namespace_dict(self) -> dict[str, str]:
        """``{'xmlns:<prefix>': uri}`` of the record's ``mri``/``gex``/``gml``/``gco`` declarations, in document
        order (the last declaration of a prefix wins). Raises ``ParseError`` when ``xml_text`` is not XML."""
        if self.xml_text is None:
            raise ElementTree.ParseError("no metadata record text to read namespaces from")
        namespaces: dict[str, str] = {}
        for _event, (prefix, uri) in ElementTree.iterparse(StringIO(self.xml_text), events=("start-ns",)):
            if prefix in EXTENT_NAMESPACE_PREFIXES:
                namespaces.pop(f"xmlns:{prefix}", None)
                namespaces[f"xmlns:{prefix}"] = uri
        return namespaces

    def build_api_payload(self) -> list[dict[str, str]]:
        """The batch-editing change replacing the record's extent with the spatial, vertical and temporal data."""
        spatial, vertical, temporal = self.spatial_data or {}, self.vertical_data or {}, self.temporal_data or {}
        children = [
            {"tag": ["gex:geographicElement", "gex:EX_BoundingPolygon", "gex:polygon"],
             "value": _text(spatial.get("boundingpolygonasgml3"))},
            {"tag": ["gex:verticalElement", "gex:EX_VerticalExtent"], "elems": [
                {"tag": ["gex:minimumValue", "gco:Real"], "value": _text(vertical.get("min_value"))},
                {"tag": ["gex:maximumValue", "gco:Real"], "value": _text(vertical.get("max_value"))},
            ]},
            {"tag": ["gex:temporalElement", "gex:EX_TemporalExtent", "gex:extent", "gml:TimePeriod"],
             "attr": {"gml:id": generate_id()}, "elems": [
                {"tag": "gml:beginPosition", "value": _text(temporal.get("min_value"))},
                {"tag": "gml:endPosition", "value": _text(temporal.get("max_value"))},
            ]},
        ]
        extent = dict_to_xml("gex:EX_Extent", attr=self.get_namespace_dict(), elems=children)
        return [{"value": dict_to_xml("gn_replace", value=extent), "xpath": EXTENT_XPATH}]

    def run(self) -> None:
        """Collect the configured extents, read the record and write the new extent (nothing when none is set)."""
        if self.spatial is None and self.temporal is None and self.vertical is None:
            return
        self._logger.info("Collecting extent data for %s", self.uuid)
        connection = self._conn
        for kind, query in (("spatial", connection.get_spatial_extent), ("temporal", connection.get_temporal_extent),
                            ("vertical", connection.get_vertical_extent)):
            arguments = getattr(self, kind)
            if arguments:
                setattr(self, f"{kind}_data", query(**arguments))
        record_xml = self._session.get_record(self.uuid)
        self.xml_text = record_xml
        self._logger.info("Updating extent data for %s", self.uuid)
        self._session.update_record(_uuid=self.uuid, changes=self.build_api_payload())

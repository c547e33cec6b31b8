"""Update the extents of GeoNetwork metadata records from the data loaded by the CSV harvester.

``requests`` is imported when a GeoNetwork session is used, keeping ``import aodncore.pipeline`` fast.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aodncore.pipeline.exceptions import GeonetworkConnectionError, GeonetworkRequestError
from aodncore.util.misc import format_exception

__all__ = [
    "BASE_API",
    "ENDPOINT_BATCH_UPDATE",
    "ENDPOINT_RECORD_GET",
    "Geonetwork",
    "GeonetworkMetadataHandler",
    "dict_to_xml",
    "geonetwork_exception_handler",
]

BASE_API = "srv/api/0.1"
ENDPOINT_RECORD_GET = "records"
ENDPOINT_BATCH_UPDATE = "records/batchediting"

EXTENT_XPATH = ".//mri:MD_DataIdentification/mri:extent"
NAMESPACES = {
    "mri": "http://standards.iso.org/iso/19115/-3/mri/1.0",
    "gex": "http://standards.iso.org/iso/19115/-3/gex/1.0",
    "gco": "http://standards.iso.org/iso/19115/-3/gco/1.0",
    "gml": "http://www.opengis.net/gml/3.2",
}
REQUEST_TIMEOUT = 60
_TEXT_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ATTR_ENTITIES = {**_TEXT_ENTITIES, '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _escape(text: str, entities: Mapping[str, str]) -> str:
    return "".join(entities.get(char, char) for char in text)
_LOGGER = logging.getLogger(__name__)


class _RawXml(str):
    """A string that :func:`dict_to_xml` inserts verbatim (already well-formed XML, e.g. GML from PostGIS)."""


def geonetwork_exception_handler(func: Callable) -> Callable:
    """Decorator turning ``requests`` failures into GeoNetwork connection/request errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import requests

        try:
            return func(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GeonetworkConnectionError(f"unable to reach GeoNetwork: {format_exception(exc)}") from None
        except requests.RequestException as exc:
            raise GeonetworkRequestError(f"GeoNetwork request failed: {format_exception(exc)}") from None

    return wrapper


def dict_to_xml(
    tag: str,
    value: Any = None,
    attr: Mapping[str, Any] | None = None,
    elems: Iterable[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    display: bool = True,
) -> str:
    """Render one XML element (and, recursively, its children) to a string.

    ``value`` is the text content (escaped); ``attr`` the attributes; ``elems`` the child elements, each a mapping
    of this function's keyword arguments (a single mapping is one child). ``display=False`` renders nothing.
    """
    if not display:
        return ""
    attributes = "".join(f' {name}="{_escape(str(val), _ATTR_ENTITIES)}"' for name, val in (attr or {}).items())
    if isinstance(elems, Mapping):
        elems = [elems]
    children = "".join(dict_to_xml(**child) for child in (elems or []))
    if value is None:
        text = ""
    elif isinstance(value, _RawXml):
        text = str(value)
    else:
        text = _escape(str(value), _TEXT_ENTITIES)
    if not text and not children:
        return f"<{tag}{attributes}/>"
    return f"<{tag}{attributes}>{text}{children}</{tag}>"


class Geonetwork:
    """A GeoNetwork API session (basic auth, XSRF token) for reading and batch-editing metadata records."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = requests.auth.HTTPBasicAuth(username, password)
        self.session.headers.update({"Accept": "application/xml"})
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"Geonetwork(base_url={self.base_url!r})"

    def _url(self, endpoint: str = "") -> str:
        return "/".join(part for part in (self.base_url, BASE_API, endpoint) if part)

    @geonetwork_exception_handler
    def _ensure_token(self) -> None:
        if self._token is not None:
            return
        # GeoNetwork answers the first (unauthorised) POST with an XSRF-TOKEN cookie
        self.session.post(self._url(), timeout=REQUEST_TIMEOUT)
        token = self.session.cookies.get("XSRF-TOKEN")
        if not token:
            raise GeonetworkRequestError(f"GeoNetwork at '{self.base_url}' did not return an XSRF-TOKEN cookie")
        self._token = token
        self.session.headers["X-XSRF-TOKEN"] = token

    @geonetwork_exception_handler
    def get_record(self, uuid: str) -> str:
        """The XML text of record ``uuid``."""
        self._ensure_token()
        response = self.session.get(self._url(f"{ENDPOINT_RECORD_GET}/{uuid}"), timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        return response.text

    @geonetwork_exception_handler
    def update_record(self, uuid: str, changes: list[dict]) -> str:
        """Apply batch-editing ``changes`` (``[{"xpath": ..., "value": ...}]``) to record ``uuid``."""
        self._ensure_token()
        response = self.session.put(
            self._url(ENDPOINT_BATCH_UPDATE),
            params={"uuids": uuid},
            json=changes,
            timeout=REQUEST_TIMEOUT,
        )
        response.raise_for_status()
        return response.text


class GeonetworkMetadataHandler:
    """Compute the extents of one metadata update (``spatial``/``temporal``/``vertical``) and write them.

    ``metadata`` is one entry of ``harvest_params['metadata_updates']`` (with ``db_schema`` added to ``spatial``).
    """

    def __init__(self, conn: Any, session: Geonetwork, metadata: Mapping[str, Any], logger: Any = None) -> None:
        self.conn = conn
        self.session = session
        self.metadata = metadata
        self.logger = logger if logger is not None else _LOGGER

    def get_extents(self) -> dict[str, Any]:
        extents: dict[str, Any] = {}
        spatial = self.metadata.get("spatial")
        if spatial:
            extents["polygon"] = self.conn.get_spatial_extent(
                spatial.get("db_schema"), spatial["table"], spatial["column"], spatial["resolution"]
            )
        temporal = self.metadata.get("temporal")
        if temporal:
            extents["temporal"] = self.conn.get_temporal_extent(temporal["table"], temporal["column"])
        vertical = self.metadata.get("vertical")
        if vertical:
            extents["vertical"] = self.conn.get_vertical_extent(vertical["table"], vertical["column"])
        return extents

    def build_extent_xml(self, extents: Mapping[str, Any]) -> str:
        """The ``<gn_replace>`` wrapped ``mri:extent``/``gex:EX_Extent`` element for the given extents."""
        elements: list[dict] = []
        polygon = extents.get("polygon")
        if polygon:
            elements.append({"tag": "gex:geographicElement", "elems": {"tag": "gex:EX_BoundingPolygon", "elems": {
                "tag": "gex:polygon", "value": _RawXml(polygon)}}})
        vertical = extents.get("vertical")
        if vertical and None not in vertical:
            elements.append({"tag": "gex:verticalElement", "elems": {"tag": "gex:EX_VerticalExtent", "elems": [
                {"tag": "gex:minimumValue", "elems": {"tag": "gco:Real", "value": vertical[0]}},
                {"tag": "gex:maximumValue", "elems": {"tag": "gco:Real", "value": vertical[1]}},
            ]}})
        temporal = extents.get("temporal")
        if temporal and None not in temporal:
            elements.append({"tag": "gex:temporalElement", "elems": {"tag": "gex:EX_TemporalExtent", "elems": {
                "tag": "gex:extent", "elems": {
                    "tag": "gml:TimePeriod",
                    "attr": {"gml:id": f"temporal-extent-{self.metadata.get('uuid', '')}"},
                    "elems": [
                        {"tag": "gml:beginPosition", "value": temporal[0]},
                        {"tag": "gml:endPosition", "value": temporal[1]},
                    ],
                }}}})
        namespaces = {f"xmlns:{prefix}": uri for prefix, uri in NAMESPACES.items()}
        extent = dict_to_xml("mri:extent", attr=namespaces, elems={"tag": "gex:EX_Extent", "elems": elements})
        return dict_to_xml("gn_replace", value=_RawXml(extent))

    def run(self) -> None:
        uuid = self.metadata["uuid"]
        extents = self.get_extents()
        if not any(extents.values()):
            self.logger.warning("no extents found for metadata record '%s'; record not updated", uuid)
            return
        changes = [{"xpath": EXTENT_XPATH, "value": self.build_extent_xml(extents)}]
        self.session.update_record(uuid, changes)
        self.logger.info("updated extents of metadata record '%s'", uuid)

"""``StateQuery``: what a handler can ask about the current state of the published store and the WFS index."""

from __future__ import annotations

import warnings
from typing import Any

from aodncore.pipeline.files import RemotePipelineFileCollection

__all__ = ["StateQuery"]


class StateQuery:
    """Read-only queries against the upload store (``storage_broker``) and a WFS service (``wfs_broker``)."""

    def __init__(self, storage_broker: Any, wfs_broker: Any) -> None:
        self._store = storage_broker
        self._wfs = wfs_broker

    @property
    def _storage_broker(self) -> Any:
        """The storage broker under the name handler code (aodndata) falls back to."""
        return self._store

    @property
    def wfs(self) -> Any:
        """The underlying OWSLib ``WebFeatureService`` (``AttributeError`` when no WFS is configured)."""
        return self._wfs.wfs

    def query_storage(self, query: str) -> RemotePipelineFileCollection:
        """Objects in the upload store whose path starts with ``query``."""
        return self._store.query(query)

    def download(self, remote_pipeline_files: Any, local_path: str) -> None:
        """Download store objects below ``local_path``; sets each file's ``local_path``."""
        self._store.download(remote_pipeline_files, local_path)

    def query_wfs_getfeature_dict(self, layer: str | None = None, **kwargs: Any) -> dict:
        """GetFeature on ``layer`` as a dict (``typename=`` is accepted but deprecated)."""
        if not layer:
            warnings.warn("pass the layer name as 'layer' instead of 'typename'", DeprecationWarning, stacklevel=2)
            layer = kwargs.pop("typename")
        return self._wfs.getfeature_dict(layer, **kwargs)

    def query_wfs_files(self, layer: str, **kwargs: Any) -> RemotePipelineFileCollection:
        """Files listed by a WFS layer, as remote files whose ``dest_path`` is the layer's URL value."""
        return RemotePipelineFileCollection(self._wfs.query_files(layer, **kwargs))

    def query_wfs_urls_for_layer(self, layer: str, **kwargs: Any) -> Any:
        """Deprecated: the raw set of URLs of a layer."""
        warnings.warn("use query_wfs_files instead", DeprecationWarning, stacklevel=2)
        return self._wfs.query_files(layer, **kwargs)

    def query_wfs_file_exists(self, layer: str, name: str) -> bool:
        """True if ``name`` is listed by ``layer``."""
        return self._wfs.query_file_exists(layer, name)

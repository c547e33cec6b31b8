"""aodncore: ingest ocean-data files — resolve, check, publish, notify — classically or with Prefect 3."""

try:
    from .__about__ import __version__
except ImportError:  # pragma: no cover - only when the package metadata is broken
    __version__ = "Unknown/Not Installed"

__all__ = ["__version__"]

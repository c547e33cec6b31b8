"""The process-wide configuration singleton; nothing is read until one of its attributes is used."""

from aodncore.pipeline.configlib import LazyConfigManager

__all__ = ["CONFIG"]

CONFIG = LazyConfigManager()

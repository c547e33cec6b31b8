"""Classic path of ``NullHandler`` (the standard library's do-nothing logging handler)."""

from logging import NullHandler

__all__ = ["NullHandler"]

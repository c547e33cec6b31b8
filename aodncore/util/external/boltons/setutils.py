"""Classic path of :class:`IndexedSet` (boltons' insertion-ordered, indexable set)."""

from boltons.setutils import IndexedSet

__all__ = ["IndexedSet"]

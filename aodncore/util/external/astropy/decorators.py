"""Classic path of the descriptors :class:`classproperty` and :class:`lazyproperty` (written for aodncore)."""

from aodncore.util.external import classproperty, lazyproperty

__all__ = ["classproperty", "lazyproperty"]

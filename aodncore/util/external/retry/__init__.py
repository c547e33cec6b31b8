"""Classic path of the retry helpers: ``retry`` (decorator) and ``retry_call``, implemented with tenacity."""

from .api import retry, retry_call

__all__ = ["retry", "retry_call"]

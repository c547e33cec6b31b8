"""Shared, dependency-free building blocks."""

from .exceptions import AodnBaseError, SystemCommandFailedError

__all__ = ["AodnBaseError", "SystemCommandFailedError"]

"""Table-schema helpers under their classic module path (``aodncore.table``); the code lives in
:mod:`aodncore.util.ff`. Importing this package imports ``tableschema``."""

import tableschema  # noqa: F401 - the classic module imported it; clients may rely on it being loaded

from .ff import get_field_type, get_tableschema_descriptor

__all__ = ["get_field_type", "get_tableschema_descriptor"]

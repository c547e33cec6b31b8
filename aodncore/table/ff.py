"""``aodncore.table.ff``: the classic path of :func:`get_field_type` and :func:`get_tableschema_descriptor`."""

from aodncore.util.ff import get_field_type, get_tableschema_descriptor

__all__ = ["get_field_type", "get_tableschema_descriptor"]

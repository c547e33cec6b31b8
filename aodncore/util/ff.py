"""Frictionless table-schema helpers (tableschema is imported on first use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_field_type", "get_tableschema_descriptor"]

_FIELD_TYPES = {
    "integer": "int",
    "string": "varchar",
    "any": "varchar",
    "number": "numeric",
    "datetime": "timestamp",
    "date": "date",
}


def get_tableschema_descriptor(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Validate the table schema held in ``obj[name]`` (or ``obj`` itself) and return its expanded descriptor.

    :raises InvalidSchemaError: if the descriptor does not meet the table-schema standard
    """
    import tableschema

    from aodncore.pipeline.exceptions import InvalidSchemaError

    message = "Schema definition does not meet the tableschema standard"
    try:
        schema = tableschema.Schema(obj.get(name, obj))
    except (tableschema.exceptions.TableSchemaException, AttributeError, TypeError, ValueError, KeyError) as e:
        # a malformed descriptor can break tableschema's expansion step before validation runs
        raise InvalidSchemaError(message) from e
    if not schema.valid:
        raise InvalidSchemaError(message)
    return schema.descriptor


def get_field_type(field_type: str) -> str:
    """Map a table-schema field type to an SQL column type (unknown types are returned unchanged)."""
    return _FIELD_TYPES.get(field_type, field_type)

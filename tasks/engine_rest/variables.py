"""Camunda's typed variables ({"name": {"value": …, "type": "String", "valueInfo": {}}}) to and from plain JSON.

Primitive types and Json are understood; serialized Java objects, files and bytes are refused (400): this engine
holds JSON values only.
"""

from __future__ import annotations

import json
from datetime import datetime

from core.errors import InvalidInput

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_NUMBER_TYPES = {"integer", "long", "short"}


def from_camunda(variables, *, field: str = "variables") -> dict:
    """Plain JSON variables from Camunda's typed map; a value without a type is taken as it is (as Camunda does)."""
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise InvalidInput(f"{field} must be an object", fields={field: ["Must be an object."]})
    plain = {}
    for name, typed in variables.items():
        if not isinstance(typed, dict) or "value" not in typed:
            raise InvalidInput(f"{field}.{name} must be {{'value': …, 'type': …}}", fields={field: [name]})
        plain[name] = _value(name, typed.get("value"), (typed.get("type") or "").lower(), field)
    return plain


def _value(name: str, value, kind: str, field: str):
    if value is None or kind in ("", "null"):
        return value
    try:
        if kind == "string":
            return str(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind in _NUMBER_TYPES:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "double":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "date":
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return str(value)
        if kind == "json":
            return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{field}.{name}: {value!r} is not a {kind}", fields={field: [f"{name}: not a {kind}"]}
        ) from None
    raise InvalidInput(
        f"{field}.{name}: type '{kind}' is not supported (JSON values only: String, Boolean, Integer, Long, Short, "
        "Double, Date, Json, Null)",
        fields={field: [f"{name}: unsupported type {kind}"]},
    )


def to_camunda(variables: dict) -> dict:
    """Camunda's typed map of plain JSON variables."""
    return {name: typed(value) for name, value in variables.items()}


def typed(value) -> dict:
    if value is None:
        return {"type": "Null", "value": None, "valueInfo": {}}
    if isinstance(value, bool):
        return {"type": "Boolean", "value": value, "valueInfo": {}}
    if isinstance(value, int):
        return {"type": "Integer" if INT_MIN <= value <= INT_MAX else "Long", "value": value, "valueInfo": {}}
    if isinstance(value, float):
        return {"type": "Double", "value": value, "valueInfo": {}}
    if isinstance(value, str):
        return {"type": "String", "value": value, "valueInfo": {}}
    return {"type": "Json", "value": json.dumps(value), "valueInfo": {}}

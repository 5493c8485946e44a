"""Validation of the variables a caseworker submits against a userTask's declared form fields.

A form field is a dict: {"id", "label", "type", "required", "values"}; type is one of string, text, long,
boolean, enum, date. The same rules serve the API and the inbox pages, so both refuse the same input.
"""

from __future__ import annotations

import datetime as dt

from core.errors import InvalidInput

FIELD_TYPES = {"string", "text", "long", "boolean", "enum", "date"}
MAX_TEXT_LENGTH = 20_000


def _coerce(field: dict, value):
    kind = field.get("type", "string")
    if kind in ("string", "text"):
        if not isinstance(value, str):
            raise ValueError("Must be text.")
        if "\x00" in value:
            raise ValueError("NUL characters are not allowed.")
        if len(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"At most {MAX_TEXT_LENGTH} characters.")
        return value
    if kind == "long":
        if isinstance(value, bool):
            raise ValueError("Must be a whole number.")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise ValueError("Must be a whole number.")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "on", "yes", "no"}:
            return value.lower() in {"true", "on", "yes"}
        raise ValueError("Must be true or false.")
    if kind == "enum":
        allowed = [str(v["id"]) if isinstance(v, dict) else str(v) for v in field.get("values", [])]
        if str(value) not in allowed:
            raise ValueError(f"Must be one of: {', '.join(allowed)}.")
        return str(value)
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("Must be a date (YYYY-MM-DD).") from None
    raise ValueError(f"Unknown field type {kind!r}.")


def validate_task_variables(form_fields: list[dict], variables) -> dict:
    """Return the variables coerced to their declared types, or raise InvalidInput naming each bad field.

    Variables not declared as form fields pass through unchanged (integrations may send extra data).
    """
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise InvalidInput("variables must be a JSON object", fields={"variables": ["Must be an object."]})
    errors: dict[str, list[str]] = {}
    cleaned = dict(variables)
    for field in form_fields or []:
        name = field["id"]
        value = variables.get(name)
        missing = value is None or (isinstance(value, str) and value.strip() == "" and field.get("type") != "boolean")
        if missing:
            if field.get("required"):
                errors[name] = ["This field is required."]
            cleaned.pop(name, None)
            continue
        try:
            cleaned[name] = _coerce(field, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"{first}: {errors[first][0]}", fields=errors)
    return cleaned

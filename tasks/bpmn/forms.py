"""Validation of the variables a caseworker submits against a userTask's declared form fields, and the sealing of
the ones a field marks sensitive.

A form field is a dict: {"id", "label", "type", "required", "values", "sensitive"}; type is one of string, text,
long, boolean, enum, date. The same rules serve the API and the inbox pages, so both refuse the same input.

A sensitive field's value is validated here in plaintext, then sealed (core/encryption.py) before it goes
anywhere: the task's and the instance's variables and the engine's state hold it sealed, the task history holds
SENSITIVE_HISTORY_MARKER instead (history is append-only and outlives rotation and erasure). Pages and the API
show it opened (encryption.reveal) to whoever may see the task.
"""

from __future__ import annotations

import datetime as dt

from core import encryption
from core.errors import InvalidInput

FIELD_TYPES = {"string", "text", "long", "boolean", "enum", "date"}
MAX_TEXT_LENGTH = 20_000
SENSITIVE_HISTORY_MARKER = "[sensitive: stored encrypted on the task]"


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
    refuse_sealed_input(variables)
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


def sensitive_names(form_fields: list[dict]) -> set[str]:
    return {str(field["id"]) for field in form_fields or [] if field.get("sensitive")}


def seal_sensitive(names: set[str], variables: dict) -> dict:
    """The variables with the values of `names` sealed (a non-text value as its text)."""
    return {
        name: (_sealed(value) if name in names and value is not None else value) for name, value in variables.items()
    }


def _sealed(value):
    # Only text-valued fields (string, text, date) may be sensitive (tasks/bpmn/parsing.py); anything else sent
    # under such a name is sealed as its text.
    return encryption.seal(value if isinstance(value, str) else str(value))


def refuse_sealed_input(variables, *, field: str = "variables") -> None:
    """Variables from a client may not hold text that looks sealed: pages and the API open every sealed value they
    show, so a planted ciphertext (copied from a dump) would be decrypted for whoever planted it."""
    for path, value in _strings(variables, field):
        if encryption.is_sealed(value):
            raise InvalidInput(
                f"{path}: looks like an encrypted value, which cannot be submitted",
                fields={path: ["Looks like an encrypted value, which cannot be submitted."]},
            )


def _strings(value, path):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path != "variables" else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def redact_sensitive(names: set[str], variables: dict) -> dict:
    """The variables as task history records them: sensitive values replaced by SENSITIVE_HISTORY_MARKER."""
    return {name: (SENSITIVE_HISTORY_MARKER if name in names else value) for name, value in variables.items()}

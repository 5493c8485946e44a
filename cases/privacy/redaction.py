"""How values are rewritten: a person's identifiers replaced by a pseudonym; a case's personal and free text blanked.

Plain functions over plain values (str, dict, list as loaded from JSON); no database. Each returns a new value and
leaves the one it was given alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# --- a person's identifiers ----------------------------------------------------------------------------------------

# Shorter strings are not searched for: a one-letter name would match every initial.
MIN_IDENTIFIER_LENGTH = 2
# An identifier matches as a whole token. Token characters are those of a username (letters, digits, @ . + - _), so
# "alice" is found in "user:alice" and "alice's", not inside "malice", "alice.smith" or "intake-alice"; a "." or "-"
# right after it ends the token ("… handed to alice.").
_BEFORE = r"(?<![\w@+.\-])"
_AFTER = r"(?![\w@+]|[.\-][\w@+.\-])"


@dataclass(frozen=True)
class Identity:
    """A person as found in text: the strings that name them, and the pseudonym that replaces each of them."""

    pseudonym: str
    identifiers: tuple[str, ...]
    pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        alternatives = "|".join(re.escape(identifier) for identifier in self.identifiers) or r"(?!)"
        object.__setattr__(self, "pattern", re.compile(f"{_BEFORE}(?:{alternatives}){_AFTER}", re.IGNORECASE))

    @classmethod
    def of(cls, *, pseudonym: str, identifiers: Iterable[str | None]) -> Identity:
        """Longest first, so an email address is replaced whole before the username inside it is looked for."""
        seen, kept = set(), []
        for identifier in identifiers:
            text = (identifier or "").strip()
            if len(text) >= MIN_IDENTIFIER_LENGTH and text.casefold() not in seen:
                seen.add(text.casefold())
                kept.append(text)
        return cls(pseudonym=pseudonym, identifiers=tuple(sorted(kept, key=lambda text: (-len(text), text))))

    def like_patterns(self) -> list[str]:
        """ILIKE patterns that find a row holding any identifier (a superset: the token rule is applied in Python).

        Each identifier also as it is escaped inside a JSON string, so quotes and backslashes in a name do not hide
        it from a search of a JSON column's text.
        """
        patterns = set()
        for identifier in self.identifiers:
            for form in (identifier, _json_escaped(identifier)):
                escaped = form.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                patterns.add(f"%{escaped}%")
        return sorted(patterns)

    def scrub_text(self, text: str) -> str:
        return self.pattern.sub(self.pseudonym, text) if self.identifiers else text

    def scrub_json(self, value):
        """Every string value inside the value with the identifiers replaced. Keys stay: they are the structure
        (a person whose name is "Status" must not rename every history's status key), and nothing keys by name."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, list):
            return [self.scrub_json(item) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub_json(item) for key, item in value.items()}
        return value


def _json_escaped(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


# --- a case's personal data and free text -------------------------------------------------------------------------

REDACTED_TITLE = "[redacted]"
REDACTED_TEXT = ""
# Form field types whose values are free text (tasks/bpmn/engine.py: string, text); enum, boolean, date and long
# values are structure and stay.
FREE_TEXT_FIELD_TYPES = frozenset({"string", "text"})
# Keys a form field declaration may carry to mark its value personal, whatever its type: tasks/bpmn/parsing.py
# reads the model's `sensitive` property into it (and seals such values at rest).
PERSONAL_FIELD_MARKERS = ("sensitive",)
# Process variables case_open copies from the case: its title is free text.
CASE_TEXT_VARIABLES = frozenset({"title"})
# Keys of a case's audit values (case events) that hold the case's free text.
CASE_TEXT_KEYS = {"title": REDACTED_TITLE, "description": REDACTED_TEXT}


def personal_variable_names(form_field_lists: Iterable[list]) -> set[str]:
    """The variables the forms of a process fill with free text or mark personal, plus the case's own text."""
    names = set(CASE_TEXT_VARIABLES)
    for form_fields in form_field_lists:
        for declared in form_fields or []:
            if not isinstance(declared, dict) or not declared.get("id"):
                continue
            if declared.get("type") in FREE_TEXT_FIELD_TYPES or any(declared.get(m) for m in PERSONAL_FIELD_MARKERS):
                names.add(declared["id"])
    return names


def _blank(value):
    return REDACTED_TEXT if isinstance(value, str) else None


def redact_variables(variables, names: set[str]):
    """Variables with the named ones blanked: "" for text, null for anything else. Keys stay."""
    if not isinstance(variables, dict):
        return variables
    return {
        key: (_blank(value) if key in names and value not in (None, "") else value) for key, value in variables.items()
    }


def redact_engine_state(state, names: set[str]):
    """The engine's serialised state with the named variables blanked wherever it keeps variables: each task's
    and the workflow's `data`, and each task's `delta.updates` (SpiffWorkflow's serializer), at any depth
    (subprocesses nest the same shape). Key order is kept: the engine relies on it."""
    if isinstance(state, list):
        return [redact_engine_state(item, names) for item in state]
    if not isinstance(state, dict):
        return state
    redacted = {}
    for key, value in state.items():
        if key in ("data", "updates") and isinstance(value, dict):
            redacted[key] = redact_variables(value, names)
        else:
            redacted[key] = redact_engine_state(value, names)
    return redacted


def redact_allegations(allegations):
    """Allegations with their descriptions blanked; type and date (the structure) stay."""
    if not isinstance(allegations, list):
        return allegations
    return [
        {**item, "description": REDACTED_TEXT} if isinstance(item, dict) and "description" in item else item
        for item in allegations
    ]


def redact_case_values(values):
    """Old or new values of a case event with the case's free text blanked."""
    if not isinstance(values, dict):
        return values
    redacted = {}
    for key, value in values.items():
        if key in CASE_TEXT_KEYS and isinstance(value, str) and value:
            redacted[key] = CASE_TEXT_KEYS[key]
        elif key == "allegations":
            redacted[key] = redact_allegations(value)
        else:
            redacted[key] = value
    return redacted


def redact_history_values(values, names: set[str]):
    """Old or new values of a task history event with the named form variables blanked (a completion's
    `variables`)."""
    if not isinstance(values, dict) or not isinstance(values.get("variables"), dict):
        return values
    return {**values, "variables": redact_variables(values["variables"], names)}


def redact_routing_history(hops):
    """Routing hops with their reasons (free text a supervisor may type) blanked; queues, times and actors stay."""
    if not isinstance(hops, list):
        return hops
    return [{**hop, "reason": REDACTED_TEXT} if isinstance(hop, dict) and hop.get("reason") else hop for hop in hops]

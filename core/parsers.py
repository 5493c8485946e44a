"""The API's JSON parser: DRF's, plus the limits every JSON body must keep before any field sees it.

PostgreSQL stores neither NUL characters nor lone UTF-16 surrogates (text and jsonb refuse them, psycopg cannot
encode a surrogate), and a body nested thousands deep exhausts Python's recursion in the decoder or in any
code that walks it later. Each is refused here with a 400 that names the field, so no view, serializer or
service has to remember it.
"""

from __future__ import annotations

import codecs
import re

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.settings import api_settings
from rest_framework.utils import json

DEFAULT_MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if _SURROGATE.search(text):
        return "must not contain unpaired UTF-16 surrogates"
    return None


def _path(parent: str, key) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def json_body_problem(data, *, max_depth: int) -> tuple[str, str] | None:
    """The first (field path, message) that makes `data` unstorable, or None. Iterative: depth is what it checks."""
    stack = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if problem := _problem(value):
                return path or "non_field_errors", problem
        elif isinstance(value, (dict, list)):
            if depth > max_depth:
                return path or "non_field_errors", f"nests deeper than {max_depth} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := _problem(key)):
                    return _path(path, "<key>"), f"a key {problem}"
                stack.append((item, _path(path, key), depth + 1))
    return None


class JSONParser(parsers.JSONParser):
    """`application/json` bodies, refused with 400 when nested too deep or holding NUL or lone surrogates."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parsers.get_encoding(parser_context)
        try:
            text = codecs.getreader(encoding)(stream).read()
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body nests too deeply.") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        max_depth = getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH)
        if problem := json_body_problem(data, max_depth=max_depth):
            field, message = problem
            key = field if field != "non_field_errors" else api_settings.NON_FIELD_ERRORS_KEY
            raise exceptions.ValidationError({key: [message[0].upper() + message[1:] + "."]})
        return data


def _refuse_unstorable_form_values(data) -> None:
    for key, values in data.lists():
        for value in values:
            if isinstance(value, str) and (problem := _problem(value)):
                raise exceptions.ValidationError({key: [problem[0].upper() + problem[1:] + "."]})


class FormParser(parsers.FormParser):
    """URL-encoded bodies, refused with 400 when a value holds a NUL character."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_unstorable_form_values(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Multipart bodies, refused with 400 when a form value holds a NUL character."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _refuse_unstorable_form_values(result.data)
        return result

"""Serializer fields the apps share: JSON values declared with their real shape in the OpenAPI schema."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import encryption


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A stored JSON object (variables, SLA settings, history values), declared as an object in the OpenAPI schema.

    DRF's JSONField documents any JSON value, so a client (or the schemathesis run) could not tell a string
    carrying JSON text from the object it should have been."""


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": True}})
class JSONObjectListField(serializers.JSONField):
    """A stored JSON array of objects (a user task's form fields), declared as one in the OpenAPI schema."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class RevealedJSONObjectField(JSONObjectField):
    """A stored JSON object that may hold sealed values (sensitive form fields), shown opened: the serializers
    using it answer callers who may see the row. A value that cannot be opened shows encryption.UNREADABLE_MARKER."""

    def to_representation(self, value):
        return super().to_representation(encryption.reveal(value))

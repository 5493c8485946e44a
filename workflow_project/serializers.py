"""Output serializers whose fields are built once per class, not once per response."""
from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings


class OutputSerializer(serializers.ModelSerializer):
    """A read-only ModelSerializer that builds and binds its fields once per class.

    DRF rebuilds a ModelSerializer's fields for every instance it makes (model introspection plus a deep copy of
    each declared field): for a single task that was 0.8 ms, a sixth of a claim-next request. The fields of an
    output serializer are the same every time, so they are built on one template instance per class and shared.
    Only for serializers that never take input and whose fields read nothing from `context` (the shared fields
    are bound to the template, whose context is empty); `OutputSerializer.__init__` refuses `data=`.
    """

    def __init__(self, *args, **kwargs):
        if "data" in kwargs:
            raise TypeError(f"{type(self).__name__} is an output serializer; it takes no data")
        super().__init__(*args, **kwargs)

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            template = cls()
            shared = super(OutputSerializer, template).fields  # the cached_property, evaluated on the template
            # Two threads may both build it; either result is the same, the last one kept.
            cls._shared_fields = shared
        return shared

    def to_representation(self, instance):
        """DRF's loop, reading a field that shows one plain model column straight from the instance.

        DRF's generic attribute lookup (source path walk, callables, mappings, error translation) cost more than
        rendering the value: a third of a task's serialisation. Fields that read anything else, and instances
        that are not of the serializer's model, take DRF's own path. Aware datetimes in DRF's default ISO 8601
        format are converted to the current time zone looked up once per object, not once per field (the lookup
        was 40 % of a task's serialisation); they render exactly as DRF renders them.
        """
        if not isinstance(instance, self.Meta.model):
            return super().to_representation(instance)
        cls = type(self)
        plan = cls.__dict__.get("_read_plan")
        if plan is None:
            plan = cls._read_plan = tuple(
                (field, _plain_column(cls.Meta.model, field), _iso_datetime(field)) for field in self._readable_fields
            )
        zone = None
        ret = {}
        for field, column, iso_datetime in plan:
            if column is not None:
                attribute = getattr(instance, column)
            else:
                try:
                    attribute = field.get_attribute(instance)
                except SkipField:
                    continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            if check_for_none is None:
                ret[field.field_name] = None
            elif iso_datetime and isinstance(attribute, datetime.datetime) and attribute.utcoffset() is not None:
                if zone is None:
                    zone = timezone.get_current_timezone() if settings.USE_TZ else False
                ret[field.field_name] = _iso_in(zone, attribute, field) if zone else field.to_representation(attribute)
            else:
                ret[field.field_name] = field.to_representation(attribute)
        return ret


def _iso_in(zone, value: datetime.datetime, field) -> str:
    """DRF's ISO 8601 rendering of an aware datetime in `zone` (`Z` for UTC)."""
    try:
        text = value.astimezone(zone).isoformat()
    except OverflowError:  # out of range in that zone: the field itself reports it, as DRF would
        return field.to_representation(value)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _iso_datetime(field) -> bool:
    """Whether DRF would render `field` as the value in the current time zone, ISO 8601 (a plain DateTimeField)."""
    if type(field) is not serializers.DateTimeField or hasattr(field, "timezone"):
        return False
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return isinstance(output_format, str) and output_format.lower() == ISO_8601


def _plain_column(model, field) -> str | None:
    """The attribute name when `field` shows one concrete, non-relational column of `model` as it is, else None."""
    if type(field).get_attribute is not Field.get_attribute or len(field.source_attrs) != 1:
        return None
    columns = {
        name
        for model_field in model._meta.concrete_fields
        if not model_field.is_relation
        for name in (model_field.name, model_field.attname)
    } | {model_field.attname for model_field in model._meta.concrete_fields if isinstance(model_field, models.ForeignKey)}
    return field.source_attrs[0] if field.source_attrs[0] in columns else None


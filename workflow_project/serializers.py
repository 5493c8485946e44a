"""Output serializers whose fields are built once per class, not once per response."""
from __future__ import annotations

from rest_framework import serializers


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

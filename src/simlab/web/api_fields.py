"""DRF fields and bases shared by every app's serializers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from simlab.core.ids import MAX_ID


class StrictSerializer(serializers.Serializer[Any]):
    """A request body that refuses fields it does not know, naming each (400): a misspelt
    `parameters` would otherwise be dropped and a default run made. Its schema says so
    (`additionalProperties: false`)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                known = ", ".join(name for name, f in self.fields.items() if not f.read_only)
                raise serializers.ValidationError(
                    {name: [f"Unknown field; the fields are: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class _StrictSerializerSchema(OpenApiSerializerExtension):
    """drf-spectacular: a StrictSerializer's request schema admits no other property."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class ObjectIdField(serializers.IntegerField):
    """An object's id in a request body: a positive 64-bit integer (past 64 bits the
    database cannot even look it up: SQLite raised an overflow error, a 500)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

"""DRF fields shared by every app's serializers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from simlab.core.ids import MAX_ID


class ObjectIdField(serializers.IntegerField):
    """An object's id in a request body: a positive 64-bit integer (past 64 bits the
    database cannot even look it up: SQLite raised an overflow error, a 500)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

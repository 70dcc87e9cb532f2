"""A fast multi-row INSERT … RETURNING id, for bulk work where the ORM's per-field
preparation of model instances dominates (a 1000-row batch in well under 100 ms)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models

# SQLite allows 32766 bound variables; PostgreSQL 65535. Stay far below both.
_MAX_VARIABLES = 30_000


def _adapter(field: models.Field[Any, Any]) -> Any:
    if isinstance(field, models.JSONField):
        return lambda value: json.dumps(value, separators=(",", ":"))
    if isinstance(field, models.DateTimeField):
        return lambda value: (
            connection.ops.adapt_datetimefield_value(value)
            if isinstance(value, datetime)
            else value
        )
    return lambda value: value


def insert_returning_ids(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert `rows` (attribute name → value; every row the same keys) and return their ids,
    in order. Values must already be valid: no model validation or signals run here."""
    if not rows:
        return []
    names = list(rows[0])
    fields: list[models.Field[Any, Any]] = [model._meta.get_field(n) for n in names]  # type: ignore[misc]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    adapters = [_adapter(f) for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    per_statement = max(1, _MAX_VARIABLES // len(names))
    placeholder = "(" + ", ".join(["%s"] * len(names)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [
                adapt(row[name])
                for row in chunk
                for name, adapt in zip(names, adapters, strict=True)
            ]
            # Table and column names come from the model's metadata, quoted; values are bound.
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
                f"{', '.join([placeholder] * len(chunk))} RETURNING id"
            )
            cursor.execute(sql, params)
            ids.extend(row[0] for row in cursor.fetchall())
    # RETURNING gives no order guarantee in SQL; ids are assigned in VALUES order by both
    # engines, and sorting makes that explicit.
    ids.sort()
    return ids

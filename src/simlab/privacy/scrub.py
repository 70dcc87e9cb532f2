"""Find and replace a person's identifiers in every text and JSON column of every model.

Erasure cannot rely on a list of the places a name may have been copied to (audit
details, a project's description, a monitor's notification e-mails, the admin's own
log): the columns are read from the models' metadata, so a model added later is
covered without a change here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.functions import Cast

# A needle this short would match inside unrelated words and figures.
_MIN_NEEDLE = 3


@dataclass(frozen=True)
class Column:
    model: type[models.Model]
    field: models.Field[Any, Any]

    @property
    def label(self) -> str:
        return f"{self.model._meta.db_table}.{self.field.column}"

    @property
    def is_json(self) -> bool:
        return isinstance(self.field, models.JSONField)


def text_columns() -> Iterator[Column]:
    """Every concrete text-like (char, text, e-mail, slug) and JSON column of every
    managed model. File names are left out: they are paths built from ids."""
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        for field in meta.concrete_fields:
            if isinstance(field, models.FileField):
                continue
            if isinstance(field, models.CharField | models.TextField | models.JSONField):
                yield Column(model, field)


class Identifiers:
    """The strings that identify one person, matched whole (not inside a longer word)
    and without regard to case."""

    def __init__(self, values: Iterable[str]) -> None:
        kept = {v.strip() for v in values if v and len(v.strip()) >= _MIN_NEEDLE}
        # Longest first: an e-mail is replaced before the username inside it.
        self.values = sorted(kept, key=len, reverse=True)
        alternatives = "|".join(re.escape(v) for v in self.values) or r"(?!x)x"
        self._pattern = re.compile(rf"(?<![\w]){'(?:' + alternatives + ')'}(?![\w])", re.I)

    def found_in(self, text: str) -> bool:
        return bool(self._pattern.search(text))

    def replace(self, value: Any, replacement: str) -> Any:
        """`value` (a string, or JSON: lists, objects and their keys) with every
        identifier replaced."""
        if isinstance(value, str):
            return self._pattern.sub(replacement, value)
        if isinstance(value, list):
            return [self.replace(item, replacement) for item in value]
        if isinstance(value, dict):
            return {
                self.replace(key, replacement): self.replace(item, replacement)
                for key, item in value.items()
            }
        return value

    def _sql_needles(self) -> list[str]:
        # JSON text may hold a non-ASCII name escaped (\u00e9) rather than as is.
        escaped = (json.dumps(v)[1:-1] for v in self.values)
        return sorted(set(self.values) | set(escaped))

    def candidates(self, column: Column) -> models.QuerySet[Any]:
        """Rows whose column contains an identifier somewhere (a superset: the exact
        match, word boundaries included, is made in Python on these few rows)."""
        name = column.field.name
        qs = column.model._default_manager.all()
        if column.is_json:
            qs = qs.annotate(_scrub_text=Cast(name, models.TextField()))
            name = "_scrub_text"
        if not self.values:
            return qs.none()
        where = reduce(or_, (models.Q(**{f"{name}__icontains": n}) for n in self._sql_needles()))
        return qs.filter(where)


def _holds(identifiers: Identifiers, value: Any) -> bool:
    if value is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return identifiers.found_in(text)


def find(identifiers: Identifiers) -> dict[str, int]:
    """How many rows of each column hold one of the identifiers."""
    found: dict[str, int] = {}
    for column in text_columns():
        rows = identifiers.candidates(column).values_list(column.field.attname, flat=True)
        count = sum(1 for value in rows.iterator() if _holds(identifiers, value))
        if count:
            found[column.label] = count
    return found


def replace(identifiers: Identifiers, replacement: str) -> dict[str, int]:
    """Replace the identifiers with `replacement` everywhere; how many rows changed per
    column. Plain UPDATEs by key: no model's save() or signals run."""
    changed: dict[str, int] = {}
    for column in text_columns():
        attname = column.field.attname
        rows = identifiers.candidates(column).values_list("pk", attname)
        count = 0
        for pk, value in list(rows):
            if not _holds(identifiers, value):
                continue
            new = identifiers.replace(value, replacement)
            if not column.is_json:
                new = new[: column.field.max_length] if column.field.max_length else new
            column.model._default_manager.filter(pk=pk).update(**{column.field.name: new})
            count += 1
        if count:
            changed[column.label] = count
    return changed

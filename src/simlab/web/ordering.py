"""`?ordering=` for every list: DRF's OrderingFilter, but strict and stable.

DRF drops fields it does not know without a word; here an unknown field is a 400 naming
`ordering`. Each list declares `ordering_fields`; the id breaks ties (in the same
direction as the first field), so pages never shuffle rows between them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request


class StrictOrderingFilter(OrderingFilter):
    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        allowed = list(getattr(view, "ordering_fields", None) or ())
        fields = [term.strip() for term in raw.split(",") if term.strip()]
        unknown = [f for f in fields if f.lstrip("-") not in allowed]
        if unknown or not fields:
            choices = ", ".join(f"{name}, -{name}" for name in allowed) or "none"
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Unknown field(s): {', '.join(unknown)}. One of: {choices}."
                    ]
                }
            )
        if not any(f.lstrip("-") == "id" for f in fields):
            fields.append("-id" if fields[0].startswith("-") else "id")
        return fields

"""Reads of usage: an organisation's rollup per day and kind, and its totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Sum
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.usage.models import DailyUsage, Kind
from simlab.usage.services import usage_day

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class UsageRow:
    day: date
    kind: str
    quantity: int
    events: int


@dataclass(frozen=True)
class UsageReport:
    organization_id: int
    start: date
    end: date
    kinds: list[str]
    rows: list[UsageRow]  # by day, then kind; days without usage are left out
    totals: dict[str, int]  # every kind asked for, 0 when none

    def by_day(self) -> list[tuple[date, dict[str, int]]]:
        """Each day with usage, and its quantity of each kind (0 when none)."""
        days: dict[date, dict[str, int]] = {}
        for row in self.rows:
            days.setdefault(row.day, dict.fromkeys(self.kinds, 0))[row.kind] = row.quantity
        return list(days.items())


def usage_report(
    actor: Actor,
    *,
    organization_id: int,
    start: date | None = None,
    end: date | None = None,
    kind: str | None = None,
) -> UsageReport:
    """The organisation's usage per day from `start` to `end` (inclusive, UTC days; the
    last 30 days by default), of one kind or all. Owners and admins see it."""
    require_scope(actor, "read")
    require_role(actor, organization_id, Role.ADMIN, what="organization")
    end = end or usage_day(timezone.now())
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationFailed(
            "Invalid input: start: after end.", details={"start": ["Must not be after end."]}
        )
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(
            f"Invalid input: start: the range is longer than {MAX_DAYS} days.",
            details={"start": [f"At most {MAX_DAYS} days from start to end."]},
        )
    if kind is not None and kind not in Kind.values:
        raise ValidationFailed(
            f"Invalid input: kind: unknown kind '{kind}'.",
            details={"kind": [f"One of: {', '.join(Kind.values)}."]},
        )
    kinds = [kind] if kind is not None else list(Kind.values)
    found = DailyUsage.objects.filter(
        organization_id=organization_id, day__gte=start, day__lte=end, kind__in=kinds
    ).order_by("day", "kind")
    rows = [UsageRow(day=r.day, kind=r.kind, quantity=r.quantity, events=r.events) for r in found]
    totals = dict.fromkeys(kinds, 0)
    for row in rows:
        totals[row.kind] += row.quantity
    return UsageReport(
        organization_id=organization_id,
        start=start,
        end=end,
        kinds=kinds,
        rows=rows,
        totals=totals,
    )


def usage_on_day(organization_id: int, kind: Kind, day: date) -> int:
    """An organisation's quantity of one kind on one day, from the rollup (for quotas)."""
    total = DailyUsage.objects.filter(
        organization_id=organization_id, day=day, kind=kind
    ).aggregate(total=Sum("quantity"))["total"]
    return int(total or 0)

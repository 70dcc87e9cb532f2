"""Usage for tests, recorded through the service (so the rollup follows the events)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time

from django.db import transaction

from simlab.accounts.models import Organization
from simlab.usage.models import Kind, UsageEvent
from simlab.usage.services import usage_record

_keys = itertools.count()


def recorded(
    organization: Organization,
    kind: Kind,
    quantity: int,
    *,
    day: date | None = None,
    key: str | None = None,
) -> bool:
    """One event (a fresh id unless `key` is given), at noon UTC of `day` (today if none)."""
    moment = datetime.combine(day, time(12), tzinfo=UTC) if day else datetime.now(UTC)
    with transaction.atomic():
        return usage_record(
            organization_id=organization.pk,
            key=key or f"test:{next(_keys)}",
            kind=kind,
            quantity=quantity,
            occurred_at=moment,
        )


def events_sum(organization: Organization, kind: Kind) -> int:
    """The sum over the events themselves (what every figure must equal)."""
    return sum(
        UsageEvent.objects.filter(organization=organization, kind=kind).values_list(
            "quantity", flat=True
        )
    )

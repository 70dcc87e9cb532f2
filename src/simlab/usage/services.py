"""Recording usage: idempotent events and their daily rollup, in the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from simlab.usage.models import DailyUsage, Kind, UsageEvent

# Rows per INSERT: well under SQLite's limit on bound parameters.
_CHUNK = 500


@dataclass(frozen=True)
class UsageFact:
    """One metered fact. `key` is its idempotency id within the organisation: derive it
    from what is metered (e.g. `simulation:42:attempt:1:cpu`), never from the clock."""

    organization_id: int
    key: str
    kind: Kind
    quantity: int
    project_id: int | None = None
    user_id: int | None = None
    subject_type: str = ""
    subject_id: str = ""
    occurred_at: datetime = field(default_factory=timezone.now)


def usage_day(moment: datetime) -> date:
    """The (UTC) day a moment's usage counts on."""
    return moment.astimezone(UTC).date()


def usage_record(
    *,
    organization_id: int,
    key: str,
    kind: Kind,
    quantity: int,
    project_id: int | None = None,
    user_id: int | None = None,
    subject_type: str = "",
    subject_id: str = "",
    occurred_at: datetime | None = None,
) -> bool:
    """Record one fact; whether it was new (False: this id was recorded before)."""
    fact = UsageFact(
        organization_id=organization_id,
        key=key,
        kind=kind,
        quantity=quantity,
        project_id=project_id,
        user_id=user_id,
        subject_type=subject_type,
        subject_id=subject_id,
        occurred_at=occurred_at or timezone.now(),
    )
    return usage_record_many([fact]) == 1


def usage_record_many(facts: Iterable[UsageFact]) -> int:
    """Record facts (zero quantities are skipped); how many were new.

    Call it inside the transaction of the action metered: the events and the rollup
    commit or roll back with it. An id already recorded inserts nothing and adds nothing
    to the rollup, so the rollup stays the exact sum of the events."""
    if not connection.in_atomic_block:
        raise RuntimeError("usage_record must run inside the metered action's transaction.")
    unique: dict[tuple[int, str], UsageFact] = {}
    for fact in facts:
        if fact.quantity < 0:
            raise ValueError(f"Usage quantity must not be negative: {fact.key}.")
        if fact.quantity:
            unique.setdefault((fact.organization_id, fact.key), fact)
    if not unique:
        return 0
    inserted: set[tuple[int, str]] = set()
    rows = list(unique.values())
    for start in range(0, len(rows), _CHUNK):
        inserted.update(_insert_events(rows[start : start + _CHUNK]))
    totals: dict[tuple[int, date, str], list[int]] = defaultdict(lambda: [0, 0])
    for pair in inserted:
        fact = unique[pair]
        total = totals[(fact.organization_id, usage_day(fact.occurred_at), fact.kind)]
        total[0] += fact.quantity
        total[1] += 1
    # In key order: writers that touch several rollup rows lock them in one order.
    ordered = sorted(totals.items())
    for start in range(0, len(ordered), _CHUNK):
        _add_to_rollup(ordered[start : start + _CHUNK])
    return len(inserted)


def _insert_events(facts: Sequence[UsageFact]) -> list[tuple[int, str]]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: the (organisation, key) pairs that were
    new, in one statement (PostgreSQL and SQLite alike)."""
    q = connection.ops.quote_name
    columns = [
        "organization_id",
        "key",
        "kind",
        "quantity",
        "project_id",
        "user_id",
        "subject_type",
        "subject_id",
        "occurred_at",
    ]
    params: list[Any] = []
    for fact in facts:
        params += [
            fact.organization_id,
            fact.key,
            str(fact.kind),
            fact.quantity,
            fact.project_id,
            fact.user_id,
            fact.subject_type,
            fact.subject_id,
            connection.ops.adapt_datetimefield_value(fact.occurred_at),
        ]
    marks = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(facts))
    sql = (
        f"INSERT INTO {q(UsageEvent._meta.db_table)} ({', '.join(map(q, columns))})"  # noqa: S608
        f" VALUES {marks} ON CONFLICT ({q('organization_id')}, {q('key')}) DO NOTHING"
        f" RETURNING {q('organization_id')}, {q('key')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(org), str(key)) for org, key in cursor.fetchall()]


def _add_to_rollup(totals: Sequence[tuple[tuple[int, date, str], list[int]]]) -> None:
    """Add to each (organisation, day, kind) row, creating it if missing: one atomic
    upsert, so concurrent writers never lose an increment."""
    q = connection.ops.quote_name
    table = q(DailyUsage._meta.db_table)
    params: list[Any] = []
    for (organization_id, day, kind), (quantity, events) in totals:
        params += [organization_id, connection.ops.adapt_datefield_value(day), kind]
        params += [quantity, events]
    marks = ", ".join(["(%s, %s, %s, %s, %s)"] * len(totals))
    sql = (
        f"INSERT INTO {table} ({q('organization_id')}, {q('day')}, {q('kind')},"  # noqa: S608
        f" {q('quantity')}, {q('events')}) VALUES {marks}"
        f" ON CONFLICT ({q('organization_id')}, {q('day')}, {q('kind')}) DO UPDATE SET"
        f" {q('quantity')} = {table}.{q('quantity')} + excluded.{q('quantity')},"
        f" {q('events')} = {table}.{q('events')} + excluded.{q('events')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@transaction.atomic
@transaction.atomic
def usage_rebuild_rollup(organization_id: int) -> int:
    """Recompute an organisation's rollup from its events (an operator's repair: `simlab
    manage usage_rebuild`); rows written. One transaction: the quota never reads a rollup
    half rebuilt."""
    DailyUsage.objects.filter(organization_id=organization_id).delete()
    sums = (
        UsageEvent.objects.filter(organization_id=organization_id)
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day", "kind")
        .annotate(quantity=Sum("quantity"), events=Count("id"))
        .order_by()
    )
    rows = [
        DailyUsage(
            organization_id=organization_id,
            day=row["day"],
            kind=row["kind"],
            quantity=row["quantity"],
            events=row["events"],
        )
        for row in sums
    ]
    DailyUsage.objects.bulk_create(rows)
    return len(rows)

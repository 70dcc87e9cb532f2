"""What checkers do to the database: claim due checks (leases), record results in bulk
(raw rows, rollups, state, incidents and their notifications in one transaction), purge
old rows, and the one check a person asks for ("test connection").

Several checker processes may run at once: on PostgreSQL each claims rows with
`FOR UPDATE SKIP LOCKED` and a lease, so every due check is taken by one; on SQLite one
process at a time holds the checker lease row and claims everything."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from simlab.accounts.permissions import require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor, Source
from simlab.registry.models import (
    Channel,
    CheckerLease,
    CheckResult,
    Granularity,
    Incident,
    Notification,
    Rollup,
    Service,
    ServiceState,
    Status,
)
from simlab.registry.probe import ProbeResult, Target, new_session, probe
from simlab.registry.secrets import decrypt_headers
from simlab.registry.selectors import service_get
from simlab.registry.timing import next_slot, with_jitter
from simlab.usage.models import Kind as UsageKind
from simlab.usage.services import UsageFact, usage_record_many

CHECKER_LEASE = "checker"
TEST_TIMEOUT_S = 30.0
_STATE_FIELDS = [
    "status",
    "consecutive_successes",
    "consecutive_failures",
    "next_check_at",
    "lease_owner",
    "lease_until",
    "breaker_until",
    "breaker_level",
    "last_checked_at",
    "last_latency_ms",
    "last_error",
    "last_service_info",
    "conformant",
    "status_changed_at",
]


def registry_settings() -> dict[str, Any]:
    return dict(settings.SIMLAB_REGISTRY)


def target_of(service: Service) -> Target:
    return Target(
        id=service.pk,
        kind=service.kind,
        url=service.url,
        timeout_s=service.timeout_s,
        headers=decrypt_headers(service.credentials_encrypted),
        expected_status=tuple(service.expected_status or ()),
        max_latency_ms=service.max_latency_ms,
        json_equals=dict(service.json_equals or {}),
        cert_expiry_days=service.cert_expiry_days,
    )


@dataclass(frozen=True)
class Claim:
    target: Target
    due_at: datetime
    # The service row's version: a checker drops the claim if the row changes after it.
    updated_at: datetime


def skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def checker_lease_take(owner: str, *, ttl_s: float, now: datetime | None = None) -> bool:
    """Whether `owner` may claim checks now. Where rows can be claimed with SKIP LOCKED,
    any number of checkers may; elsewhere the one holding (or taking over an expired)
    checker lease row, renewed for `ttl_s`."""
    if skip_locked():
        return True
    now = now or timezone.now()
    held = CheckerLease.objects.filter(name=CHECKER_LEASE).values_list("owner", "until").first()
    if held is None:
        CheckerLease.objects.get_or_create(name=CHECKER_LEASE)
    elif held[0] not in ("", owner) and held[1] is not None and held[1] >= now:
        return False  # read only: on SQLite a write would take the database's one lock
    taken = CheckerLease.objects.filter(
        Q(owner=owner) | Q(owner="") | Q(until__lt=now) | Q(until__isnull=True),
        name=CHECKER_LEASE,
    ).update(owner=owner, until=now + timedelta(seconds=ttl_s))
    return taken == 1


def checker_lease_release(owner: str) -> None:
    CheckerLease.objects.filter(name=CHECKER_LEASE, owner=owner).update(owner="", until=None)


def checker_claim(
    owner: str, *, limit: int, horizon_s: float, lease_margin_s: float, now: datetime | None = None
) -> list[Claim]:
    """Claim up to `limit` enabled services due within `horizon_s` whose lease is free or
    expired. The lease lasts until the batch's last due time plus the longest timeout and
    the margin: if this process dies, another takes the checks that long after."""
    now = now or timezone.now()
    due = (
        ServiceState.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            next_check_at__lte=now + timedelta(seconds=horizon_s),
            service__enabled=True,
        )
        .order_by("next_check_at")
        .select_related("service")
    )
    # A read first: on SQLite a transaction takes the one write lock, so an idle tick
    # must not open one.
    if not due.exists():
        return []
    with transaction.atomic():
        return _claim(owner, due, limit=limit, lease_margin_s=lease_margin_s, now=now)


def _claim(
    owner: str, due: Any, *, limit: int, lease_margin_s: float, now: datetime
) -> list[Claim]:
    if skip_locked():
        due = due.select_for_update(skip_locked=True, of=("self",))
    states = list(due[:limit])
    if not states:
        return []
    # One lease for the batch (one UPDATE): until the last due time in it plus the longest
    # timeout and the margin, and never already past (a takeover runs from now).
    longest = max(state.service.timeout_s for state in states)
    until = max(max(state.next_check_at for state in states), now) + timedelta(
        seconds=longest + lease_margin_s
    )
    ServiceState.objects.filter(service_id__in=[s.service_id for s in states]).update(
        lease_owner=owner, lease_until=until
    )
    return [
        Claim(target_of(state.service), state.next_check_at, state.service.updated_at)
        for state in states
    ]


def checker_release(owner: str, service_ids: Iterable[int]) -> None:
    """Give back claims not checked (a stopping checker, an edited service)."""
    ServiceState.objects.filter(service_id__in=list(service_ids), lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


def checker_changed(since: datetime) -> tuple[list[int], datetime]:
    """Services edited after `since`, and the newest edit time seen (the next `since`)."""
    rows = list(Service.objects.filter(updated_at__gt=since).values_list("pk", "updated_at"))
    newest = max((updated for _, updated in rows), default=since)
    return [pk for pk, _ in rows], newest


def checker_edits_start() -> datetime:
    return Service.objects.aggregate(newest=Max("updated_at"))["newest"] or timezone.now()


# --- Recording results ------------------------------------------------------------------


@dataclass
class Transition:
    service_id: int
    old: str
    new: str
    incident_id: int | None = None
    event: str = ""  # "opened" / "resolved" / ""


@dataclass
class Recorded:
    written: int = 0
    # Results whose lease this checker no longer held (another took the check).
    dropped: int = 0
    transitions: list[Transition] = field(default_factory=list)


def in_maintenance(service: Service, at: datetime) -> bool:
    for window in service.maintenance or ():
        start = datetime.fromisoformat(window["start"])
        end = datetime.fromisoformat(window["end"])
        if start <= at < end:
            return True
    return False


def advance(
    state: ServiceState, service: Service, result: ProbeResult, *, maintenance: bool
) -> str:
    """Apply one result to the counters; the new status. Thresholds confirm a change; a
    service never seen before takes its first success at once."""
    if result.ok:
        state.consecutive_successes += 1
        state.consecutive_failures = 0
    else:
        state.consecutive_failures += 1
        state.consecutive_successes = 0
    old = state.status
    healthy = Status.DEGRADED if result.degraded else Status.UP
    if maintenance:
        return Status.MAINTENANCE
    if result.ok:
        if old == Status.DOWN and state.consecutive_successes < service.success_threshold:
            return Status.DOWN
        return healthy
    if old == Status.DOWN or state.consecutive_failures >= service.failure_threshold:
        return Status.DOWN
    return Status.UNKNOWN if old == Status.MAINTENANCE else old


def plan_next(
    state: ServiceState,
    service: Service,
    new: str,
    checked_at: datetime,
    *,
    changed: bool,
    edge_interval_s: float,
    breaker_max_s: float,
) -> None:
    """Set the next check time and the breaker: the healthy interval at the service's
    phase; the unhealthy one while degraded or unknown; a quick re-check right after a
    change or while one is being confirmed; a down service behind a breaker whose
    back-off doubles with every failed check, up to `breaker_max_s`."""
    if new == Status.DOWN and state.consecutive_failures >= service.failure_threshold:
        backoff = min(service.unhealthy_interval_s * 2**state.breaker_level, breaker_max_s)
        state.breaker_level = min(state.breaker_level + 1, 30)
        state.breaker_until = checked_at + timedelta(seconds=backoff)
        state.next_check_at = state.breaker_until
        return
    state.breaker_level = 0
    state.breaker_until = None
    confirming = (new != Status.DOWN and state.consecutive_failures > 0) or (
        new == Status.DOWN and state.consecutive_successes > 0
    )
    healthy = new in (Status.UP, Status.MAINTENANCE)
    interval = service.interval_s if healthy else service.unhealthy_interval_s
    if changed or confirming:
        state.next_check_at = checked_at + timedelta(seconds=min(edge_interval_s, interval))
        return
    state.next_check_at = with_jitter(next_slot(service.pk, interval, checked_at), service.jitter_s)


@transaction.atomic
def checker_record(
    owner: str | None, results: Sequence[ProbeResult], *, actor: Actor | None = None
) -> Recorded:
    """Write a batch of results: raw rows, rollups, each service's new state, incidents
    opened or resolved and their notifications, all in one transaction.

    `owner`: the checker whose leases these results answer (a result whose lease another
    checker holds now is dropped); None for a check a person asked for, which keeps the
    schedule and the lease as they are."""
    cfg = registry_settings()
    actor = actor or Actor.system(source=Source.COMPUTE)
    recorded = Recorded()
    by_id = {r.service_id: r for r in results}
    # In key order: concurrent writers lock rows in one order, so they cannot deadlock.
    states_qs = (
        ServiceState.objects.filter(service_id__in=list(by_id))
        .select_related("service")
        .order_by("service_id")
    )
    if owner is not None:
        states_qs = states_qs.filter(lease_owner=owner)
    if connection.features.has_select_for_update:
        states_qs = states_qs.select_for_update(of=("self",))
    states = list(states_qs)
    recorded.dropped = len(by_id) - len(states)
    if not states:
        return recorded
    kept = [by_id[s.service_id] for s in states]
    written = CheckResult.objects.bulk_create(
        [
            CheckResult(
                service_id=r.service_id,
                checked_at=r.checked_at,
                ok=r.ok,
                degraded=r.degraded,
                latency_ms=r.latency_ms,
                status_code=r.status_code,
                error=r.error[:2000],
            )
            for r in kept
        ],
        batch_size=1000,
    )
    _rollups_add(kept)
    _meter_checks(states, written)
    open_incidents = {
        i.service_id: i
        for i in Incident.objects.filter(
            service_id__in=[s.service_id for s in states], resolved_at__isnull=True
        )
    }
    for state in states:
        result = by_id[state.service_id]
        service = state.service
        old = state.status
        new = advance(
            state, service, result, maintenance=in_maintenance(service, result.checked_at)
        )
        state.status = new
        state.last_latency_ms = result.latency_ms
        state.last_error = result.error[:2000]
        if result.service_info is not None:
            state.last_service_info = result.service_info
        state.conformant = result.conformant
        if owner is not None:
            plan_next(
                state,
                service,
                new,
                result.checked_at,
                changed=new != old,
                edge_interval_s=cfg["edge_interval_s"],
                breaker_max_s=cfg["breaker_max_s"],
            )
            state.lease_owner, state.lease_until = "", None
        elif result.ok:
            state.breaker_level, state.breaker_until = 0, None
        first_seen = state.last_checked_at is None
        state.last_checked_at = result.checked_at
        if new != old:
            state.status_changed_at = result.checked_at
            transition = Transition(service.pk, old, new)
            _incident_step(transition, service, result, open_incidents.get(service.pk))
            recorded.transitions.append(transition)
            if first_seen and not transition.event:
                continue  # a new service's first status: learnt, not changed
            audit_record(
                actor,
                "registry.service.status",
                obj=service,
                details={
                    "from": old,
                    "to": new,
                    "error": result.error,
                    "incident": transition.incident_id,
                    "event": transition.event,
                },
            )
    _update_states(states)
    recorded.written = len(states)
    return recorded


def _meter_checks(states: Sequence[ServiceState], written: Sequence[CheckResult]) -> None:
    """One `health_checks` usage event per organisation per batch (checks are frequent:
    one row per check would outgrow the results), keyed by the batch's first result row of
    that organisation. Shared services (no organisation) are not metered."""
    organization_of = {s.service_id: s.service.organization_id for s in states}
    batches: dict[int, list[CheckResult]] = {}
    for row in written:
        organization_id = organization_of.get(row.service_id)
        if organization_id is not None:
            batches.setdefault(organization_id, []).append(row)
    usage_record_many(
        UsageFact(
            organization_id=organization_id,
            key=f"registry.checks:{min(row.pk for row in rows)}",
            kind=UsageKind.HEALTH_CHECKS,
            quantity=len(rows),
            occurred_at=max(row.checked_at for row in rows),
            subject_type="registry.checkresult",
            subject_id=str(min(row.pk for row in rows)),
        )
        for organization_id, rows in batches.items()
    )


def _update_states(states: Sequence[ServiceState]) -> None:
    """Write the states' hot columns: one prepared UPDATE run for every row (the ORM's
    bulk_update builds a CASE per column and row, which costs more than the checks)."""
    by_name = {f.name: f for f in ServiceState._meta.concrete_fields}
    fields = [by_name[name] for name in _STATE_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(ServiceState._meta.db_table)} SET {assignments}"  # noqa: S608
        f" WHERE {quote('service_id')} = %s"
    )
    rows = [
        [f.get_db_prep_save(getattr(state, f.attname), connection) for f in fields]
        + [state.service_id]
        for state in states
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _incident_step(
    transition: Transition, service: Service, result: ProbeResult, incident: Incident | None
) -> None:
    """Open an incident when a service goes down, resolve it when it is up again; each
    opening and resolution queues one notification per target (unique rows)."""
    at = result.checked_at
    step = {
        "at": at.isoformat(),
        "from": transition.old,
        "to": transition.new,
        "error": result.error,
    }
    if transition.new == Status.DOWN and incident is None:
        incident = Incident.objects.create(
            service=service, opened_at=at, cause=result.error[:2000], transitions=[step]
        )
        transition.event = "opened"
    elif incident is not None and transition.new in (Status.UP, Status.DEGRADED):
        incident.resolved_at = at
        incident.transitions = [*incident.transitions, step]
        incident.save(update_fields=["resolved_at", "transitions"])
        transition.event = "resolved"
    elif incident is not None:
        incident.transitions = [*incident.transitions, step]
        incident.save(update_fields=["transitions"])
        transition.incident_id = incident.pk
        return
    else:
        return
    transition.incident_id = incident.pk
    targets = [
        *((Channel.WEBHOOK, url) for url in service.notify_webhooks or ()),
        *((Channel.EMAIL, address) for address in service.notify_emails or ()),
        *((Channel.APPRISE, url) for url in service.notify_apprise or ()),
    ]
    Notification.objects.bulk_create(
        [
            Notification(incident=incident, event=transition.event, channel=c, target=t)
            for c, t in targets
        ],
        ignore_conflicts=True,
    )


_BUCKETS = {
    Granularity.MINUTE: lambda t: t.replace(second=0, microsecond=0),
    Granularity.HOUR: lambda t: t.replace(minute=0, second=0, microsecond=0),
    Granularity.DAY: lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
}


def _rollups_add(results: Sequence[ProbeResult]) -> None:
    """Add the results to their minute, hour and day rows: one upsert per row, counts
    added in the database, so concurrent checkers never lose each other's counts."""
    sums: dict[tuple[int, str, datetime], list[Any]] = defaultdict(lambda: [0, 0, 0.0, None, None])
    for r in results:
        latency = r.latency_ms or 0.0
        for granularity, bucket_of in _BUCKETS.items():
            row = sums[(r.service_id, granularity.value, bucket_of(r.checked_at.astimezone(UTC)))]
            row[0] += 1
            row[1] += int(r.ok)
            row[2] += latency
            row[3] = latency if row[3] is None else min(row[3], latency)
            row[4] = latency if row[4] is None else max(row[4], latency)
    quote = connection.ops.quote_name
    table = quote(Rollup._meta.db_table)
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    count, ok, total = quote("count"), quote("ok_count"), quote("latency_sum_ms")
    low, high = quote("latency_min_ms"), quote("latency_max_ms")
    sql = (
        f"INSERT INTO {table} (service_id, granularity, bucket,"  # noqa: S608
        f" {count}, {ok}, {total}, {low}, {high})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (service_id, granularity, bucket) DO UPDATE SET"
        f" {count} = {table}.{count} + EXCLUDED.{count},"
        f" {ok} = {table}.{ok} + EXCLUDED.{ok},"
        f" {total} = {table}.{total} + EXCLUDED.{total},"
        f" {low} = {least}(COALESCE({table}.{low}, EXCLUDED.{low}), EXCLUDED.{low}),"
        f" {high} = {greatest}(COALESCE({table}.{high}, EXCLUDED.{high}), EXCLUDED.{high})"
    )
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (service_id, granularity, adapt(bucket), *values)
        for (service_id, granularity, bucket), values in sorted(sums.items())
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def results_purge(now: datetime | None = None) -> dict[str, int]:
    """Delete raw results and fine rollups past their retention."""
    cfg = registry_settings()
    now = now or timezone.now()
    deleted = {
        "results": CheckResult.objects.filter(
            checked_at__lt=now - timedelta(days=cfg["raw_retention_days"])
        ).delete()[0],
    }
    for granularity, key in (
        (Granularity.MINUTE, "minute_retention_days"),
        (Granularity.HOUR, "hour_retention_days"),
    ):
        deleted[granularity.value] = Rollup.objects.filter(
            granularity=granularity, bucket__lt=now - timedelta(days=cfg[key])
        ).delete()[0]
    return deleted


def service_test_connection(actor: Actor, service_id: int) -> ProbeResult:
    """Check the service now (as a person asks from the admin or the API), record the
    result like any other and return it."""
    require_scope(actor, "write")
    service = service_get(actor, service_id)
    # Someone is waiting on the answer: at most TEST_TIMEOUT_S, whatever the schedule's.
    target = replace(target_of(service), timeout_s=min(service.timeout_s, TEST_TIMEOUT_S))
    result = async_to_sync(_probe_once)(target)
    checker_record(None, [result], actor=actor)
    audit_record(
        actor,
        "registry.service.test",
        obj=service,
        details={"ok": result.ok, "error": result.error, "latency_ms": result.latency_ms},
    )
    return result


async def _probe_once(target: Target) -> ProbeResult:
    async with new_session(ca_bundle=registry_settings().get("ca_bundle")) as session:
        return await probe(session, target)

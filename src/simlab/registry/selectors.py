"""Reads of registered services: only those the actor may see. Shared services (no
organisation) and public ones are visible to every signed-in user; the others to members
of their organisation. A foreign id is a 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet, Sum

from simlab.accounts.permissions import require_scope
from simlab.accounts.selectors import organization_ids_with_role
from simlab.core.actor import Actor
from simlab.core.errors import NotFound
from simlab.registry.models import (
    CheckResult,
    Granularity,
    Incident,
    Rollup,
    Service,
    Status,
    Visibility,
)

USABLE = (Status.UP, Status.DEGRADED)


def _visible(actor: Actor) -> Q:
    if actor.is_superuser or actor.is_system:
        return Q()
    return (
        Q(organization__isnull=True)
        | Q(visibility=Visibility.PUBLIC)
        | Q(organization_id__in=organization_ids_with_role(actor))
    )


def service_list(
    actor: Actor,
    *,
    organization_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    usable: bool | None = None,
) -> QuerySet[Service]:
    """The services the actor may see, each with its state in the same query.

    `usable`: up (or degraded), enabled, and not behind an open circuit breaker."""
    require_scope(actor, "read")
    qs = Service.objects.filter(_visible(actor)).select_related("state")
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(state__status=status)
    if tag:
        # SQLite has no JSON containment: the quoted element in the stored text instead.
        qs = (
            qs.filter(tags__contains=[tag])
            if _json_contains()
            else qs.filter(tags__icontains=f'"{tag}"')
        )
    if usable is not None:
        good = Q(enabled=True, state__status__in=USABLE) & Q(state__breaker_until__isnull=True)
        qs = qs.filter(good) if usable else qs.exclude(good)
    return qs


def _json_contains() -> bool:
    from django.db import connection

    return bool(connection.features.supports_json_field_contains)


def service_get(actor: Actor, service_id: int) -> Service:
    require_scope(actor, "read")
    service = Service.objects.filter(_visible(actor), pk=service_id).select_related("state").first()
    if service is None:
        raise NotFound("No such service.")
    return service


def service_result_list(actor: Actor, service_id: int) -> QuerySet[CheckResult]:
    """Raw results, newest first (kept for the retention period only)."""
    service = service_get(actor, service_id)
    return CheckResult.objects.filter(service_id=service.pk).order_by("-checked_at", "-id")


def service_incident_list(actor: Actor, service_id: int) -> QuerySet[Incident]:
    service = service_get(actor, service_id)
    return Incident.objects.filter(service_id=service.pk).order_by("-opened_at", "-id")


def service_rollup_list(
    actor: Actor, service_id: int, *, granularity: str = Granularity.HOUR, since: datetime | None
) -> QuerySet[Rollup]:
    service = service_get(actor, service_id)
    qs = Rollup.objects.filter(service_id=service.pk, granularity=granularity)
    if since is not None:
        qs = qs.filter(bucket__gte=since)
    return qs.order_by("bucket")


@dataclass(frozen=True)
class Uptime:
    ok: int
    total: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.ok / self.total if self.total else None


def service_uptimes(
    service_ids: list[int], *, granularity: str, since: datetime
) -> dict[int, Uptime]:
    """Checks passed over checks made since `since`, per service, from the rollups (one
    grouped query over at most a page of services: the status page never scans history).
    The ids come from `service_list`, which has checked who may see them."""
    rows = (
        Rollup.objects.filter(
            service_id__in=service_ids, granularity=granularity, bucket__gte=since
        )
        .values("service_id")
        .annotate(ok=Sum("ok_count"), total=Sum("count"))
    )
    return {row["service_id"]: Uptime(row["ok"] or 0, row["total"] or 0) for row in rows}


LIVE_FIELDS = (
    "id",
    "name",
    "state__status",
    "state__last_latency_ms",
    "state__last_checked_at",
    "state__last_error",
)


def service_live_states(
    actor: Actor, *, changed_since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The live state of the services the actor may see, in name order: all (up to
    `limit`), or those whose status changed after `changed_since`."""
    qs = service_list(actor).order_by("name", "id")
    if changed_since is not None:
        qs = qs.filter(state__status_changed_at__gt=changed_since)
    rows = qs.values(*LIVE_FIELDS)
    if limit is not None:
        rows = rows[:limit]
    return [
        {
            "service_id": row["id"],
            "name": row["name"],
            "status": row["state__status"] or Status.UNKNOWN,
            "latency_ms": row["state__last_latency_ms"],
            "checked_at": row["state__last_checked_at"].isoformat()
            if row["state__last_checked_at"]
            else None,
            "error": row["state__last_error"] or "",
        }
        for row in rows
    ]

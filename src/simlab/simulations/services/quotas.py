"""Quotas (a user's unfinished simulations and creates per minute; an organisation's CPU
seconds per day, from the usage rollup) and the writable project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_scope
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, QuotaExceeded, ValidationFailed
from simlab.projects.models import Project
from simlab.projects.selectors import project_get, project_get_with
from simlab.simulations.models import ACTIVE, Simulation
from simlab.usage.models import Kind
from simlab.usage.selectors import usage_on_day
from simlab.usage.services import usage_day


@dataclass(frozen=True)
class _Usage:
    """A user's unfinished simulations and those created in the last minute."""

    active: int
    recent: int

    @classmethod
    def from_counts(cls, counts: Sequence[Any]) -> _Usage:
        """From the values of `_usage_sql`'s two expressions."""
        active, recent = counts
        return cls(int(active), int(recent))


def _enforce_quotas(actor: Actor, count: int, *, path: str, usage: _Usage | None = None) -> None:
    """Refuse `count` more simulations beyond a quota; `usage` if already read, else read."""
    limit = settings.SIMLAB_MAX_BATCH_SIZE
    if count > limit:
        raise ValidationFailed(
            f"Invalid input: {path}: {count} simulations exceed the batch limit of {limit}.",
            code="batch_too_large",
            details={path: [f"At most {limit} simulations per request."], "limit": limit},
        )
    if count == 0:
        raise ValidationFailed(
            f"Invalid input: {path}: nothing to create.", details={path: ["Must not be empty."]}
        )
    if actor.user_id is None:
        return  # system work is not metered
    if usage is None:
        sql, params = _usage_sql(actor.user_id)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            usage = _Usage.from_counts(cursor.fetchone())
    if usage.active + count > settings.SIMLAB_MAX_ACTIVE_PER_USER:
        raise QuotaExceeded(
            f"You have {usage.active} unfinished simulations; the limit is "
            f"{settings.SIMLAB_MAX_ACTIVE_PER_USER}. Wait for some to finish.",
            code="active_quota_exceeded",
            details={
                "active": usage.active,
                "requested": count,
                "limit": settings.SIMLAB_MAX_ACTIVE_PER_USER,
            },
        )
    if usage.recent + count > settings.SIMLAB_MAX_CREATES_PER_MINUTE:
        raise QuotaExceeded(
            f"Rate limit: {settings.SIMLAB_MAX_CREATES_PER_MINUTE} simulations per minute.",
            code="rate_limited",
            details={
                "created_last_minute": usage.recent,
                "requested": count,
                "limit_per_minute": settings.SIMLAB_MAX_CREATES_PER_MINUTE,
                "retry_after_s": 60,
            },
        )


def _usage_sql(user_id: int) -> tuple[str, list[Any]]:
    """The two counts of `_Usage` as SELECT expressions, each through its own covering
    index (user+status, user+created_at).

    Written in SQL because it runs on every create: built by the ORM (subqueries, an
    anchor table to select from) it cost more than all the other queries of a create."""
    table = connection.ops.quote_name(Simulation._meta.db_table)
    marks = ", ".join(["%s"] * len(ACTIVE))
    sql = (
        f"(SELECT COUNT(*) FROM {table} WHERE created_by_id = %s"  # noqa: S608
        f" AND status IN ({marks})),"
        f" (SELECT COUNT(*) FROM {table} WHERE created_by_id = %s AND created_at >= %s)"
    )
    since = timezone.now() - timedelta(minutes=1)
    active_statuses = [status.value for status in ACTIVE]
    params = [user_id, *active_statuses, user_id, connection.ops.adapt_datetimefield_value(since)]
    return sql, params


def _writable_project(actor: Actor, project_id: int) -> tuple[Project, _Usage | None]:
    """The project to create in, with the actor's usage for the quotas read in the same
    query (None for system work, which is not metered)."""
    require_scope(actor, "write")
    if actor.user_id is None:
        return _open(project_get(actor, project_id, minimum=Role.MEMBER)), None
    sql, params = _usage_sql(actor.user_id)
    project, counts = project_get_with(
        actor, project_id, minimum=Role.MEMBER, columns=sql, params=params
    )
    enforce_daily_cpu(project.organization_id)
    return _open(project), _Usage.from_counts(counts)


def enforce_daily_cpu(organization_id: int) -> None:
    """Refuse new work once the organisation's runs (simulations and interactive runs)
    used its CPU seconds of the day (UTC): the rollup's figure, kept in the same
    transactions as the runs' ends."""
    limit_s = settings.SIMLAB_MAX_CPU_S_PER_ORG_DAY
    if not limit_s:
        return
    used_s = usage_on_day(organization_id, Kind.CPU_MS, usage_day(timezone.now())) / 1000
    if used_s >= limit_s:
        raise QuotaExceeded(
            f"Your organisation's runs used {used_s:.0f} of its {limit_s} CPU seconds "
            "today (UTC); new work can start tomorrow.",
            code="cpu_quota_exceeded",
            details={"used_cpu_s": round(used_s, 3), "limit_cpu_s_per_day": limit_s},
        )


def _open(project: Project) -> Project:
    """The project, unless it is archived (closed to new work)."""
    if project.archived_at is not None:
        raise Conflict(
            f"Project '{project.name}' is archived: restore it to start new work.",
            code="project_archived",
        )
    return project

"""Retention: set an organisation's policy (its owners and admins), and purge what is
past it (the scheduler), one audit row per purge that removed something."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.assistant.models import TurnEvent
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.privacy.models import RetentionPolicy
from simlab.registry.models import CheckResult
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services.deletion import delete_files_after_commit

KINDS = ("results_days", "raw_logs_days", "check_history_days")
MAX_DAYS = 36_500


@transaction.atomic
def retention_set(
    actor: Actor, *, organization_id: int, days: dict[str, int | None]
) -> RetentionPolicy:
    """Set some or all of the organisation's retention periods (None keeps for ever)."""
    require_scope(actor, "admin")
    require_role(actor, organization_id, Role.ADMIN, what="organization")
    errors = {
        name: [f"A whole number of days from 1 to {MAX_DAYS}, or null."]
        for name, value in days.items()
        if name not in KINDS
        or (
            value is not None
            and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DAYS)
        )
    }
    if errors:
        raise ValidationFailed("Invalid retention policy.", details=errors)
    policy, _ = RetentionPolicy.objects.select_for_update().get_or_create(
        organization_id=organization_id
    )
    for name, value in days.items():
        setattr(policy, name, value)
    policy.updated_at = timezone.now()
    policy.save()
    audit_record(actor, "retention.set", obj=policy, organization_id=organization_id, details=days)
    return policy


def _purge_results(organization_id: int, before: datetime) -> int:
    expired = Simulation.objects.filter(
        project__organization_id=organization_id,
        status__in=[Status.SUCCEEDED, Status.FAILED, Status.CANCELLED],
        finished_at__lt=before,
    ).exclude(result_npz="", result_png="", result_tiles="")
    rows = list(expired.values_list("pk", "result_npz", "result_png", "result_tiles"))
    delete_files_after_commit([name for row in rows for name in row[1:]])
    Simulation.objects.filter(pk__in=[row[0] for row in rows]).update(
        result_npz="", result_png="", result_tiles=""
    )
    return len(rows)


def _purge_raw_logs(organization_id: int, before: datetime) -> int:
    deleted, _ = TurnEvent.objects.filter(
        turn__conversation__organization_id=organization_id,
        turn__finished_at__lt=before,
    ).delete()
    return deleted


def _purge_check_history(organization_id: int, before: datetime) -> int:
    deleted, _ = CheckResult.objects.filter(
        service__organization_id=organization_id, checked_at__lt=before
    ).delete()
    return deleted


_PURGES = {
    "results_days": ("results", _purge_results),
    "raw_logs_days": ("raw_logs", _purge_raw_logs),
    "check_history_days": ("check_history", _purge_check_history),
}


def purge_expired(actor: Actor | None = None) -> dict[str, int]:
    """Apply every organisation's policy; how many rows went, per kind. Each purge is
    its own transaction with its audit row, so a crash keeps what was already done (the
    next run finishes the rest: the task is idempotent)."""
    actor = actor or Actor.system()
    now = timezone.now()
    totals = dict.fromkeys((kind for kind, _ in _PURGES.values()), 0)
    for policy in RetentionPolicy.objects.order_by("organization_id"):
        for field, (kind, purge) in _PURGES.items():
            days = getattr(policy, field)
            if days is None:
                continue
            before = now - timedelta(days=days)
            with transaction.atomic():
                count = purge(policy.organization_id, before)
                if count:
                    audit_record(
                        actor,
                        "retention.purge",
                        obj=policy,
                        organization_id=policy.organization_id,
                        details={"kind": kind, "rows": count, "before": before.isoformat()},
                    )
            totals[kind] += count
    return totals

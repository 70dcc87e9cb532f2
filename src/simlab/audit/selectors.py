"""Reads of the audit log, scoped to what the actor may see."""

from __future__ import annotations

from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.selectors import organization_ids_with_role
from simlab.audit.models import AuditLog
from simlab.core.actor import Actor


def audit_log_list(actor: Actor) -> QuerySet[AuditLog]:
    """Entries of the organisations where the actor is an admin or owner."""
    return AuditLog.objects.filter(
        organization_id__in=organization_ids_with_role(actor, Role.ADMIN)
    ).select_related("actor")

"""Reads of data-rights state."""

from __future__ import annotations

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.core.actor import Actor
from simlab.privacy.models import RetentionPolicy


def retention_get(actor: Actor, *, organization_id: int) -> RetentionPolicy:
    """The organisation's policy (an unsaved one keeping everything if none is set)."""
    require_scope(actor, "read")
    require_role(actor, organization_id, Role.VIEWER, what="organization")
    found = RetentionPolicy.objects.filter(organization_id=organization_id).first()
    return found or RetentionPolicy(organization_id=organization_id)

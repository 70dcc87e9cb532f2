"""The one way to write an audit entry."""

from __future__ import annotations

from typing import Any

from django.db import models

from simlab.audit.models import AuditLog
from simlab.core.actor import Actor
from simlab.core.context import current_request_id


def audit_record(
    actor: Actor,
    action: str,
    *,
    obj: models.Model | None = None,
    organization_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Write one audit row; call it inside the service's transaction."""
    if organization_id is None and obj is not None:
        organization_id = getattr(obj, "organization_id", None)
    return AuditLog.objects.create(
        actor_id=actor.user_id,
        actor_username=actor.username,
        api_key_id=actor.api_key_id,
        organization_id=organization_id or actor.organization_id,
        source=actor.source.value,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details or {},
        ip=actor.ip,
        request_id=actor.request_id or current_request_id() or "",
    )

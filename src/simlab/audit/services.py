"""The one way to write an audit entry."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, models
from django.utils import timezone

from simlab.audit.models import AuditLog
from simlab.core.actor import Actor
from simlab.core.context import current_request_id
from simlab.platform.db import insert_returning_ids

_IP_FIELD = AuditLog._meta.get_field("ip")


def audit_record(
    actor: Actor,
    action: str,
    *,
    obj: models.Model | None = None,
    organization_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Write one audit row; call it inside the service's transaction.

    A plain INSERT: the row is complete here, so the model's save machinery (signals,
    per-field preparation) has nothing to add."""
    if organization_id is None and obj is not None:
        organization_id = getattr(obj, "organization_id", None)
    row = {
        "created_at": timezone.now(),
        "actor_id": actor.user_id,
        "actor_username": actor.username,
        "api_key_id": actor.api_key_id,
        "organization_id": organization_id or actor.organization_id,
        "source": actor.source.value,
        "action": action,
        "object_type": obj._meta.label_lower if obj is not None else "",
        "object_id": str(obj.pk) if obj is not None else "",
        "details": details or {},
        "ip": _IP_FIELD.get_prep_value(actor.ip) or None,  # as the model would store it
        "request_id": actor.request_id or current_request_id() or "",
    }
    (pk,) = insert_returning_ids(AuditLog, [row])
    entry = AuditLog(pk=pk, **row)
    entry._state.adding = False
    entry._state.db = DEFAULT_DB_ALIAS
    return entry

"""`Idempotency-Key` on creates: the same key and request give the same answer, once.

The key's row is inserted in the same transaction as the work it answers for, under a
unique constraint: of two concurrent requests with one key, the second waits for the
first to commit, fails the constraint, rolls its own work back and replays the first's
answer. A key reused with another request is refused (422). Keys are per user and
expire after `SIMLAB_IDEMPOTENCY_TTL_S` (a day).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError, ValidationFailed
from simlab.simulations.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255

Answer = tuple[int, Any]


def parse_key(raw: str | None) -> str | None:
    """The header's key, None when absent; ValidationFailed naming the header if malformed."""
    if raw is None:
        return None
    if not (0 < len(raw) <= MAX_KEY_LENGTH and raw.isascii() and raw.isprintable()):
        raise ValidationFailed(
            f"Invalid input: {HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            details={HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return raw


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ttl() -> timedelta:
    return timedelta(seconds=settings.SIMLAB_IDEMPOTENCY_TTL_S)


class IdempotencyKeyReused(ApplicationError):
    status_code = 422
    code = "idempotency_key_reused"


def _replay(stored: IdempotentRequest, request_fingerprint: str) -> Answer:
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            f"Invalid input: {HEADER}: this key was used with another request.",
            details={HEADER: ["Already used with a different request; use a new key."]},
        )
    return stored.status_code, stored.response


def _live(user_id: int, key: str) -> IdempotentRequest | None:
    return IdempotentRequest.objects.filter(
        user_id=user_id, key=key, created_at__gte=timezone.now() - _ttl()
    ).first()


def run_once(
    actor: Actor, *, key: str | None, request_fingerprint: str, work: Callable[[], Answer]
) -> tuple[Answer, bool]:
    """`work()`'s answer, or the stored answer of an earlier request with this key; and
    whether it was replayed. Without a key (or a user), `work()` simply runs."""
    user_id = actor.user_id
    if key is None or user_id is None:
        return work(), False
    stored = _live(user_id, key)
    if stored is not None:
        return _replay(stored, request_fingerprint), True
    try:
        with transaction.atomic():
            # An expired row of this key would block the insert: it is over.
            IdempotentRequest.objects.filter(
                user_id=user_id, key=key, created_at__lt=timezone.now() - _ttl()
            ).delete()
            status_code, body = work()
            IdempotentRequest.objects.create(
                user_id=user_id,
                key=key,
                fingerprint=request_fingerprint,
                status_code=status_code,
                response=body,
            )
    except IntegrityError:
        stored = _live(user_id, key)
        if stored is None:  # pragma: no cover - the winner's row is committed before this
            raise
        return _replay(stored, request_fingerprint), True
    return (status_code, body), False


def purge_expired() -> int:
    """Drop keys past their lifetime (housekeeping)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - _ttl()).delete()
    return deleted

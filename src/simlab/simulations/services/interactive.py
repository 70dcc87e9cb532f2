"""Interactive runs (`/ws/compute`, `/compute/stream`): what may run, and how many at once.

A run is checked (scope `compute`, the engine's parameters, the interactive size limit)
before any work starts, then takes one of its user's slots. Slots are rows with a unique
(user, slot) pair, so the limit holds across processes and replicas without a lock: two
processes racing for one slot cannot both insert it. A slot is leased; the live run's
process renews the lease while the run lasts, and a slot whose process died is taken
over once its lease has ended.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from simlab.accounts.permissions import require_scope
from simlab.core.actor import Actor
from simlab.core.errors import QuotaExceeded, ValidationFailed
from simlab.simulations.models import InteractiveSlot
from simlab.simulations.services.validation import MAX_SEED, validate_parameters


@dataclass(frozen=True)
class InteractiveRun:
    """A checked interactive run, ready for a compute worker."""

    algorithm: str
    parameters: dict[str, Any]
    seed: int


def interactive_run_check(
    actor: Actor,
    *,
    algorithm: str,
    parameters: dict[str, Any],
    seed: int | None,
    max_particles: int,
) -> InteractiveRun:
    """The run with its parameters filled in and a seed, or an ApplicationError naming
    what is wrong."""
    require_scope(actor, "compute")
    checked = validate_parameters(algorithm, parameters)
    n_particles = checked.get("n_particles")
    if isinstance(n_particles, int) and n_particles > max_particles:
        message = f"At most {max_particles} particles in an interactive run."
        raise ValidationFailed(
            f"Invalid input: parameters.n_particles: {message}",
            details={"parameters.n_particles": [f"{message} Submit larger runs as simulations."]},
        )
    return InteractiveRun(
        algorithm=algorithm,
        parameters=checked,
        seed=seed if seed is not None else secrets.randbelow(MAX_SEED),
    )


def interactive_slot_take(actor: Actor, *, limit: int, lease_s: float) -> str | None:
    """Take a free slot of the actor's user for one run: the holder token to renew and
    release it with (None for the platform's own work, which is not metered), or
    QuotaExceeded when `limit` runs of theirs are live."""
    if actor.user_id is None:
        return None
    holder = secrets.token_hex(16)
    now = timezone.now()
    until = now + timedelta(seconds=lease_s)
    leases = dict(
        InteractiveSlot.objects.filter(user_id=actor.user_id, slot__lt=limit).values_list(
            "slot", "lease_until"
        )
    )
    for slot in range(limit):
        lease = leases.get(slot)
        if lease is None:
            try:
                with transaction.atomic():
                    InteractiveSlot.objects.create(
                        user_id=actor.user_id, slot=slot, holder=holder, lease_until=until
                    )
            except IntegrityError:
                continue  # taken by another process just now
            return holder
        if lease < now and InteractiveSlot.objects.filter(
            user_id=actor.user_id, slot=slot, lease_until=lease
        ).update(holder=holder, lease_until=until):
            return holder  # its run's process died: the lease ended
    raise QuotaExceeded(
        f"At most {limit} interactive runs at a time; cancel one or wait.",
        code="too_many_runs",
        details={"limit": limit},
    )


def interactive_slot_renew(actor: Actor, holder: str | None, *, lease_s: float) -> bool:
    """Extend the run's lease; False if the slot is no longer its own."""
    if holder is None or actor.user_id is None:
        return True
    until = timezone.now() + timedelta(seconds=lease_s)
    return bool(
        InteractiveSlot.objects.filter(user_id=actor.user_id, holder=holder).update(
            lease_until=until
        )
    )


def interactive_slot_release(actor: Actor, holder: str | None) -> None:
    """Free the run's slot (nothing if it was taken over meanwhile)."""
    if holder is not None and actor.user_id is not None:
        InteractiveSlot.objects.filter(user_id=actor.user_id, holder=holder).delete()

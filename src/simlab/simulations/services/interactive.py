"""Interactive runs (`/ws/compute`, `/compute/stream`): what may run, how many at once, and
whose CPU quota they count against.

A run is checked (scope `compute`, the engine's parameters, the interactive size limit)
before any work starts, then finds its payer (an organisation with CPU seconds left today:
`interactive_run_payer`) and takes one of its user's slots. Its CPU time is recorded
against the payer when it ends, however it ends (`interactive_run_charge`), so the
organisation's daily CPU quota covers interactive runs as it covers simulations.

Slots are rows with a unique (user, slot) pair, so the limit holds across processes and
replicas without a lock: two processes racing for one slot cannot both insert it. A slot
is leased; the live run's process renews the lease while the run lasts, and a slot whose
process died is taken over once its lease has ended.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.accounts.selectors import organization_first_joined
from simlab.core.actor import Actor
from simlab.core.errors import PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.simulations.models import InteractiveSlot
from simlab.simulations.services.quotas import enforce_daily_cpu
from simlab.simulations.services.validation import MAX_SEED, validate_parameters
from simlab.usage.models import Kind
from simlab.usage.services import usage_record


@dataclass(frozen=True)
class InteractiveRun:
    """A checked interactive run, ready for a compute worker."""

    algorithm: str
    parameters: dict[str, Any]
    seed: int
    # The organisation the client asked to charge; None: its default (`interactive_run_payer`).
    organization_id: int | None = None


def interactive_run_check(
    actor: Actor,
    *,
    algorithm: str,
    parameters: dict[str, Any],
    seed: int | None,
    max_particles: int,
    organization_id: int | None = None,
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
        organization_id=organization_id,
    )


def interactive_run_payer(actor: Actor, organization_id: int | None = None) -> int | None:
    """The organisation whose daily CPU quota an interactive run counts against: the one
    asked for (the actor a member of it or above), else the one an API key is bound to,
    else the first the user joined as a member or above. None for the platform's own work
    and for a superuser outside every organisation (operators are not metered).

    Refused before anything runs: NotFound for an organisation the actor is not in,
    PermissionDenied for a viewer or a user in no organisation, QuotaExceeded once the
    organisation's CPU seconds of the day are used."""
    if actor.user_id is None:
        return None
    if organization_id is not None:
        require_role(actor, organization_id, Role.MEMBER, what="organization")
        payer = organization_id
    else:
        first = organization_first_joined(actor, Role.MEMBER)
        if first is None:
            if actor.is_superuser:
                return None
            raise PermissionDenied(
                "Interactive runs count against an organisation's CPU quota, and you are not "
                "a member of any organisation (role 'member' or higher).",
                code="no_organization",
            )
        payer = first
    enforce_daily_cpu(payer)
    return payer


def interactive_run_charge(
    actor: Actor, *, organization_id: int | None, run_key: str, cpu_s: float | None
) -> bool:
    """Record an ended run's CPU time against its payer, once per `run_key` (the run's own
    unique id); whether it was recorded (not for unmetered work, a run whose worker died
    before reporting its CPU, or a key recorded before)."""
    if organization_id is None or cpu_s is None:
        return False
    with transaction.atomic():
        return usage_record(
            organization_id=organization_id,
            key=f"interactive:{run_key}:cpu",
            kind=Kind.CPU_MS,
            quantity=max(1, round(cpu_s * 1000)),
            user_id=actor.user_id,
            subject_type="interactive_run",
            subject_id=run_key,
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

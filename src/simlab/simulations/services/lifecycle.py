"""Moving one simulation through its states: queue, cancel, retry."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict
from simlab.simulations import dispatch, events
from simlab.simulations.models import FINISHED, Simulation, Status
from simlab.simulations.selectors import simulation_get
from simlab.simulations.services.quotas import _enforce_quotas
from simlab.simulations.services.sweeps import sweep_refresh_status


@transaction.atomic
def simulation_queue(actor: Actor, simulation_id: int) -> Simulation:
    """Queue a simulation that was created without queueing."""
    require_scope(actor, "write")
    simulation = simulation_get(actor, simulation_id, minimum=Role.MEMBER)
    updated = Simulation.objects.filter(pk=simulation.pk, status=Status.CREATED).update(
        status=Status.QUEUED, queued_at=timezone.now()
    )
    if not updated:
        raise Conflict(
            f"Only a CREATED simulation can be queued; this one is {simulation.status}.",
            details={"status": simulation.status},
        )
    events.publish_rows([simulation.pk])
    transaction.on_commit(lambda: dispatch.enqueue([simulation.pk]))
    audit_record(
        actor,
        "simulation.queue",
        obj=simulation,
        organization_id=simulation.project.organization_id,
    )
    simulation.refresh_from_db()
    return simulation


@transaction.atomic
def simulation_cancel(actor: Actor, simulation_id: int) -> Simulation:
    """Cancel now if not started; a running one stops at its next progress step."""
    require_scope(actor, "write")
    simulation = simulation_get(actor, simulation_id, minimum=Role.MEMBER)
    if simulation.status in FINISHED:
        raise Conflict(
            f"The simulation has already finished ({simulation.status}).",
            details={"status": simulation.status},
        )
    now = timezone.now()
    not_started = Simulation.objects.filter(
        pk=simulation.pk, status__in=[Status.CREATED, Status.QUEUED]
    ).update(status=Status.CANCELLED, finished_at=now, error_message="Cancelled before it ran.")
    if not_started:
        events.publish_rows([simulation.pk])
    else:
        # The worker stops at its next progress step and publishes CANCELLED itself.
        Simulation.objects.filter(pk=simulation.pk, status=Status.RUNNING).update(
            cancel_requested=True
        )
    audit_record(
        actor,
        "simulation.cancel",
        obj=simulation,
        organization_id=simulation.project.organization_id,
    )
    simulation.refresh_from_db()
    if simulation.sweep_id is not None:
        transaction.on_commit(lambda: sweep_refresh_status(simulation.sweep_id))
    return simulation


@transaction.atomic
def simulation_retry(actor: Actor, simulation_id: int) -> Simulation:
    """Run a FAILED or CANCELLED simulation again (same parameters and seed)."""
    require_scope(actor, "write")
    simulation = simulation_get(actor, simulation_id, minimum=Role.MEMBER)
    _enforce_quotas(actor, 1, path="simulation")
    updated = Simulation.objects.filter(
        pk=simulation.pk, status__in=[Status.FAILED, Status.CANCELLED]
    ).update(
        status=Status.QUEUED,
        queued_at=timezone.now(),
        progress=0.0,
        error_message="",
        cancel_requested=False,
        started_at=None,
        finished_at=None,
        heartbeat_at=None,
    )
    if not updated:
        raise Conflict(
            f"Only a FAILED or CANCELLED simulation can be retried; this one is "
            f"{simulation.status}.",
            details={"status": simulation.status},
        )
    events.publish_rows([simulation.pk])
    transaction.on_commit(lambda: dispatch.enqueue([simulation.pk]))
    audit_record(
        actor,
        "simulation.retry",
        obj=simulation,
        organization_id=simulation.project.organization_id,
    )
    simulation.refresh_from_db()
    if simulation.sweep_id is not None:
        transaction.on_commit(lambda: sweep_refresh_status(simulation.sweep_id))
    return simulation

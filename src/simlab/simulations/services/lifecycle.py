"""Moving simulations through their states: queue, cancel (one, or a sweep's), retry; and
a run's tags and note."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, ValidationFailed
from simlab.simulations import dispatch, events
from simlab.simulations.models import FINISHED, Simulation, Status
from simlab.simulations.selectors import simulation_get, sweep_get
from simlab.simulations.services.quotas import _enforce_quotas
from simlab.simulations.services.remote import remote_cancel_after_commit, remote_reset
from simlab.simulations.services.sweeps import sweep_refresh_status
from simlab.wes import callbacks


def _audit(actor: Actor, action: str, simulation: Simulation) -> None:
    """One run's audit row, in its organisation's log."""
    audit_record(actor, action, obj=simulation, organization_id=simulation.project.organization_id)


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
    _audit(actor, "simulation.queue", simulation)
    simulation.refresh_from_db()
    return simulation


def _cancel(simulations: QuerySet[Simulation]) -> tuple[int, int]:
    """Cancel `simulations` that have not finished: those not started at once, running
    ones at their worker's next progress step (it publishes CANCELLED itself). Returns
    (cancelled now, asked to stop)."""
    not_started = list(
        simulations.filter(status__in=[Status.CREATED, Status.QUEUED]).values_list("pk", flat=True)
    )
    cancelled = Simulation.objects.filter(
        pk__in=not_started, status__in=[Status.CREATED, Status.QUEUED]
    ).update(
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        error_message="Cancelled before it ran.",
    )
    events.publish_rows(not_started)
    callbacks.runs_finished(not_started)
    stopping = simulations.filter(status=Status.RUNNING, cancel_requested=False).update(
        cancel_requested=True
    )
    # Those running on a registered service are told at once (not at the next poll).
    remote_cancel_after_commit(simulations.values("pk"))
    return cancelled, stopping


@transaction.atomic
def sweep_cancel(actor: Actor, sweep_id: int) -> dict[str, int]:
    """Cancel every unfinished simulation of a sweep (as `simulation_cancel` does each);
    one audit row. Returns how many were cancelled now and how many asked to stop."""
    require_scope(actor, "write")
    sweep = sweep_get(actor, sweep_id, minimum=Role.MEMBER)
    cancelled, stopping = _cancel(Simulation.objects.filter(sweep_id=sweep.pk))
    audit_record(
        actor,
        "sweep.cancel",
        obj=sweep,
        organization_id=sweep.project.organization_id,
        details={"cancelled": cancelled, "stopping": stopping},
    )
    transaction.on_commit(lambda: sweep_refresh_status(sweep.pk))
    return {"cancelled": cancelled, "stopping": stopping}


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
    _cancel(Simulation.objects.filter(pk=simulation.pk))
    _audit(actor, "simulation.cancel", simulation)
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
    remote_reset([simulation.pk])
    events.publish_rows([simulation.pk])
    transaction.on_commit(lambda: dispatch.enqueue([simulation.pk]))
    _audit(actor, "simulation.retry", simulation)
    simulation.refresh_from_db()
    if simulation.sweep_id is not None:
        transaction.on_commit(lambda: sweep_refresh_status(simulation.sweep_id))
    return simulation


MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_NOTE_LENGTH = 10_000
_TAG = re.compile(r"^[a-z0-9][a-z0-9 _.:-]*$")


def _clean_tags(tags: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(" ".join(str(tag).split()).lower() for tag in tags))
    cleaned = [tag for tag in cleaned if tag]
    problems = [tag for tag in cleaned if len(tag) > MAX_TAG_LENGTH or not _TAG.fullmatch(tag)]
    if problems or len(cleaned) > MAX_TAGS:
        message = (
            f"At most {MAX_TAGS} tags of up to {MAX_TAG_LENGTH} characters: letters, digits,"
            " spaces and - _ . : (starting with a letter or digit)."
        )
        raise ValidationFailed(f"Invalid input: tags: {message}", details={"tags": [message]})
    return cleaned


@transaction.atomic
def simulation_annotate(
    actor: Actor, simulation_id: int, *, tags: Sequence[str], note: str
) -> Simulation:
    """Set a run's tags (replacing them) and its note; members and up."""
    require_scope(actor, "write")
    simulation = simulation_get(actor, simulation_id, minimum=Role.MEMBER)
    cleaned = _clean_tags(tags)
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationFailed(
            f"Invalid input: note: at most {MAX_NOTE_LENGTH} characters.",
            details={"note": [f"At most {MAX_NOTE_LENGTH} characters."]},
        )
    stored = f",{','.join(cleaned)}," if cleaned else ""
    Simulation.objects.filter(pk=simulation.pk).update(tags=stored, note=note)
    audit_record(
        actor,
        "simulation.annotate",
        obj=simulation,
        organization_id=simulation.project.organization_id,
        details={"tags": cleaned, "note_length": len(note)},
    )
    simulation.tags, simulation.note = stored, note
    return simulation

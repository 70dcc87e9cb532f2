"""Deleting simulations and sweeps: finished work only, result files after the commit,
audit rows kept; a run that may still go on at a registered service is cancelled there."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet

from simlab.accounts.models import ROLE_RANK, Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, PermissionDenied
from simlab.projects.models import Project
from simlab.simulations.models import Simulation, Status
from simlab.simulations.selectors import simulation_get, sweep_get
from simlab.simulations.services.remote import remote_cancel_after_commit

log = structlog.get_logger(__name__)


def delete_files_after_commit(names: Iterable[str]) -> None:
    """Remove stored result files once the deleting transaction commits (a rolled-back
    delete keeps its files)."""
    kept = [name for name in names if name]

    def remove() -> None:
        for name in kept:
            try:
                default_storage.delete(name)
            except OSError:  # already gone, or storage down: the row is gone either way
                log.warning("result_file_not_deleted", name=name)

    transaction.on_commit(remove)


def refuse_if_active(active_ids: list[int], what: str) -> None:
    """Conflict while any of `what`'s simulations is queued or running."""
    if active_ids:
        raise Conflict(
            f"Cancel the queued or running simulations first: {what} still has {len(active_ids)}.",
            code="simulations_active",
            details={"active_simulations": active_ids[:100]},
        )


def prepare_cascade(projects: QuerySet[Project], what: str) -> int:
    """Before deleting `what` (a project, an organisation's projects): Conflict while any
    of their simulations is queued or running; their result files and their trained
    surrogate models' files are removed once the deletion commits. Returns how many
    simulations go."""
    from simlab.analytics.models import ModelVersion

    simulations = Simulation.objects.filter(project__in=projects)
    active = simulations.filter(status__in=[Status.QUEUED, Status.RUNNING])
    refuse_if_active(list(active.values_list("pk", flat=True)[:100]), what)
    rows = list(simulations.values_list("result_npz", "result_png", "result_tiles"))
    remote_cancel_after_commit(simulations.values("pk"))
    artifacts = ModelVersion.objects.filter(project__in=projects).values_list("artifact", flat=True)
    delete_files_after_commit([name for row in rows for name in row] + list(artifacts))
    return len(rows)


def _result_files(simulations: Iterable[Simulation]) -> list[str]:
    return [
        name
        for s in simulations
        for name in (s.result_npz.name, s.result_png.name, s.result_tiles.name)
        if name
    ]


def _active(simulations: Iterable[Simulation]) -> list[int]:
    return [s.pk for s in simulations if s.status in (Status.QUEUED, Status.RUNNING)]


def _require_owner_or_admin(actor: Actor, created_by_id: int | None, organization_id: int) -> None:
    """The creator (a member at least) or an admin of the organisation may delete."""
    role = require_role(actor, organization_id, Role.MEMBER, what="object")
    if created_by_id != actor.user_id and ROLE_RANK[role] < ROLE_RANK[Role.ADMIN]:
        raise PermissionDenied(
            "Only its creator or an organisation admin may delete this.",
            details={"role": str(role), "required_role": str(Role.ADMIN)},
        )


@transaction.atomic
def simulation_delete(actor: Actor, simulation_id: int) -> None:
    """Delete a finished (or never queued) simulation and its result files; its audit
    rows stay. A sweep's child goes with its sweep, not alone."""
    require_scope(actor, "write")
    simulation = simulation_get(actor, simulation_id, minimum=Role.MEMBER)
    _require_owner_or_admin(actor, simulation.created_by_id, simulation.project.organization_id)
    refuse_if_active(_active([simulation]), "it")
    if simulation.sweep_id is not None:
        raise Conflict(
            "This simulation belongs to a sweep: delete the sweep.",
            code="part_of_sweep",
            details={"sweep": simulation.sweep_id},
        )
    delete_files_after_commit(_result_files([simulation]))
    remote_cancel_after_commit([simulation.pk])
    audit_record(
        actor,
        "simulation.delete",
        obj=simulation,
        organization_id=simulation.project.organization_id,
        details={"algorithm": simulation.algorithm, "project": simulation.project_id},
    )
    simulation.delete()


@transaction.atomic
def sweep_delete(actor: Actor, sweep_id: int) -> None:
    """Delete a sweep whose simulations are all finished, with them and their files."""
    require_scope(actor, "write")
    sweep = sweep_get(actor, sweep_id, minimum=Role.MEMBER)
    _require_owner_or_admin(actor, sweep.created_by_id, sweep.project.organization_id)
    children = list(Simulation.objects.filter(sweep_id=sweep.pk))
    refuse_if_active(_active(children), "the sweep")
    delete_files_after_commit(_result_files(children))
    remote_cancel_after_commit([child.pk for child in children])
    audit_record(
        actor,
        "sweep.delete",
        obj=sweep,
        organization_id=sweep.project.organization_id,
        details={"simulations": len(children), "project": sweep.project_id},
    )
    sweep.delete()  # its simulations cascade

"""Creating simulations: one, or many in one insert."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.platform.db import insert_returning_ids, model_defaults
from simlab.projects.models import Project
from simlab.registry.models import Service
from simlab.simulations import dispatch, events
from simlab.simulations.models import ParameterSweep, RemoteRun, Simulation, Status
from simlab.simulations.services.quotas import _enforce_quotas, _writable_project
from simlab.simulations.services.remote import remote_attach, remote_target
from simlab.simulations.services.validation import (
    SimulationSpec,
    _validate_seed,
    validate_parameters,
)
from simlab.usage.models import Kind
from simlab.usage.services import UsageFact, usage_record_many


def _build(
    actor: Actor,
    project: Project,
    specs: Sequence[SimulationSpec],
    *,
    queue: bool,
    sweep: ParameterSweep | None = None,
    path_of: Callable[[int], str] = lambda index: f"simulations.{index}.",
) -> list[dict[str, Any]]:
    """Row values with validated parameters; `path_of(i)` prefixes error field names."""
    now = timezone.now()
    status = Status.QUEUED if queue else Status.CREATED
    # Batches repeat parameter sets (seeds vary): validate each distinct set once.
    validated: dict[tuple[str, str], dict[str, Any]] = {}
    defaults = model_defaults(Simulation)
    rows = []
    for index, spec in enumerate(specs):
        prefix = path_of(index)
        key = (spec.algorithm, json.dumps(spec.parameters, sort_keys=True, default=str))
        parameters = validated.get(key)
        if parameters is None:
            parameters = validated[key] = validate_parameters(
                spec.algorithm, spec.parameters, prefix=f"{prefix}parameters"
            )
        rows.append(
            {
                **defaults,
                "project_id": project.pk,
                "sweep_id": sweep.pk if sweep is not None else None,
                "algorithm": spec.algorithm,
                "parameters": parameters,
                "seed": _validate_seed(spec.seed, f"{prefix}seed"),
                "status": status,
                "created_by_id": actor.user_id,
                "created_at": now,
                "queued_at": now if queue else None,
            }
        )
    return rows


def _meter_created(project: Project, ids: Sequence[int], rows: Sequence[dict[str, Any]]) -> None:
    """One `simulations` usage event per run, keyed by its id: a create answered again
    from its idempotency key made no new run, so it counts nothing more."""
    usage_record_many(
        UsageFact(
            organization_id=project.organization_id,
            key=f"simulation:{pk}:created",
            kind=Kind.SIMULATIONS,
            quantity=1,
            project_id=project.pk,
            user_id=row["created_by_id"],
            subject_type="simulations.simulation",
            subject_id=str(pk),
        )
        for pk, row in zip(ids, rows, strict=True)
    )


def _instance(pk: int, row: dict[str, Any]) -> Simulation:
    """The Simulation just inserted with `row`, built from those values (no read-back)."""
    simulation = Simulation(pk=pk, **row)
    simulation._state.adding = False
    simulation._state.db = DEFAULT_DB_ALIAS
    return simulation


def _insert_and_enqueue(
    project: Project, rows: list[dict[str, Any]], *, queue: bool, service: Service | None = None
) -> tuple[list[int], list[RemoteRun]]:
    """Insert the rows (metered as usage) and publish them; with `service`, they run there
    (the dispatcher submits them to it instead of running them here): their links to it."""
    ids = insert_returning_ids(Simulation, rows)
    _meter_created(project, ids, rows)
    links = remote_attach(ids, service) if service is not None else []
    # The rows' state is known (just written): no read-back. Registered first, so the
    # QUEUED state goes out before the task.
    events.publish_states(
        [
            {"id": pk, **{name: row[name] for name in events.ROW_FIELDS}}
            for pk, row in zip(ids, rows, strict=True)
        ]
    )
    if queue:
        transaction.on_commit(lambda: dispatch.enqueue(ids))
    return ids, links


@transaction.atomic
def simulation_create(
    actor: Actor,
    *,
    project_id: int,
    algorithm: str,
    parameters: Mapping[str, Any] | None = None,
    seed: int | None = None,
    queue: bool = True,
    service_id: int | None = None,
) -> Simulation:
    """Create one simulation and (by default) queue it; with `service_id`, it runs on that
    registered service (`remote_target` says which may be used)."""
    project, usage = _writable_project(actor, project_id)
    spec = SimulationSpec(algorithm, parameters or {}, seed)
    rows = _build(actor, project, [spec], queue=queue, path_of=lambda _: "")
    service = remote_target(actor, service_id) if service_id is not None else None
    _enforce_quotas(actor, 1, path="simulation", usage=usage)
    (simulation_id,), links = _insert_and_enqueue(project, rows, queue=queue, service=service)
    simulation = _instance(simulation_id, rows[0])
    # Its remote link (or none) is known: rendering where it runs needs no query.
    link = links[0] if links else None
    if link is not None:
        link.service = service
    Simulation._meta.get_field("remote").set_cached_value(simulation, link)
    details: dict[str, Any] = {"algorithm": algorithm, "queued": queue}
    if service is not None:
        details["service_id"] = service.pk
    audit_record(
        actor,
        "simulation.create",
        obj=simulation,
        organization_id=project.organization_id,
        details=details,
    )
    return simulation


@transaction.atomic
def simulation_create_batch(
    actor: Actor,
    *,
    project_id: int,
    specs: Sequence[SimulationSpec],
    queue: bool = True,
    service_id: int | None = None,
) -> list[int]:
    """Create and queue many simulations: one insert, one publish, one audit row (with
    `service_id`, all run on that registered service)."""
    project, usage = _writable_project(actor, project_id)
    service = remote_target(actor, service_id) if service_id is not None else None
    _enforce_quotas(actor, len(specs), path="simulations", usage=usage)
    rows = _build(actor, project, specs, queue=queue)
    ids, _ = _insert_and_enqueue(project, rows, queue=queue, service=service)
    audit_record(
        actor,
        "simulation.create_batch",
        obj=project,
        organization_id=project.organization_id,
        details={
            "count": len(ids),
            "algorithms": sorted({s.algorithm for s in specs}),
            "first_id": ids[0],
            "last_id": ids[-1],
            **({"service_id": service.pk} if service is not None else {}),
        },
    )
    return ids

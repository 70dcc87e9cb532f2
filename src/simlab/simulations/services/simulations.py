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
from simlab.simulations import dispatch, events
from simlab.simulations.models import ParameterSweep, Simulation, Status
from simlab.simulations.services.quotas import _enforce_quotas, _writable_project
from simlab.simulations.services.validation import (
    SimulationSpec,
    _validate_seed,
    validate_parameters,
)


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


def _insert_and_enqueue(rows: list[dict[str, Any]], *, queue: bool) -> list[int]:
    ids = insert_returning_ids(Simulation, rows)
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
    return ids


def _instance(pk: int, row: dict[str, Any]) -> Simulation:
    """The Simulation just inserted with `row`, built from those values (no read-back)."""
    simulation = Simulation(pk=pk, **row)
    simulation._state.adding = False
    simulation._state.db = DEFAULT_DB_ALIAS
    return simulation


@transaction.atomic
def simulation_create(
    actor: Actor,
    *,
    project_id: int,
    algorithm: str,
    parameters: Mapping[str, Any] | None = None,
    seed: int | None = None,
    queue: bool = True,
) -> Simulation:
    """Create one simulation and (by default) queue it."""
    project, usage = _writable_project(actor, project_id)
    spec = SimulationSpec(algorithm, parameters or {}, seed)
    rows = _build(actor, project, [spec], queue=queue, path_of=lambda _: "")
    _enforce_quotas(actor, 1, path="simulation", usage=usage)
    (simulation_id,) = _insert_and_enqueue(rows, queue=queue)
    simulation = _instance(simulation_id, rows[0])
    audit_record(
        actor,
        "simulation.create",
        obj=simulation,
        organization_id=project.organization_id,
        details={"algorithm": algorithm, "queued": queue},
    )
    return simulation


@transaction.atomic
def simulation_create_batch(
    actor: Actor, *, project_id: int, specs: Sequence[SimulationSpec], queue: bool = True
) -> list[int]:
    """Create and queue many simulations: one insert, one publish, one audit row."""
    project, usage = _writable_project(actor, project_id)
    _enforce_quotas(actor, len(specs), path="simulations", usage=usage)
    rows = _build(actor, project, specs, queue=queue)
    ids = _insert_and_enqueue(rows, queue=queue)
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
        },
    )
    return ids

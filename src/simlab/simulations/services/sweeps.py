"""Parametric studies: creating a sweep and keeping its status in step with its children."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.simulations.models import (
    ACTIVE,
    FINISHED,
    ParameterSweep,
    Simulation,
    Status,
    sweep_status_of,
)
from simlab.simulations.services.quotas import _enforce_quotas, _writable_project
from simlab.simulations.services.remote import remote_target
from simlab.simulations.services.simulations import _build, _insert_and_enqueue
from simlab.simulations.services.validation import (
    MAX_SEED,
    SimulationSpec,
    _validate_seed,
    validate_parameters,
)


def sweep_points(axes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (one axis: its values; several: the grid)."""
    names = [axis["parameter"] for axis in axes]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(axis["values"] for axis in axes))
    ]


def _validate_axis_value(
    algorithm: str, base: Mapping[str, Any], name: str, value: Any, path: str
) -> None:
    try:
        validate_parameters(algorithm, {**base, name: value}, prefix="")
    except ValidationFailed as exc:
        messages = [m for msgs in exc.details.values() for m in msgs]
        raise ValidationFailed(
            f"Invalid input: {path}: {name}={value!r}: {messages[0] if messages else exc.message}",
            details={path: messages or [exc.message]},
        ) from None


def _validate_axes(axes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not axes:
        raise ValidationFailed(
            "Invalid input: axes: at least one parameter to vary.",
            details={"axes": ["At least one axis is required."]},
        )
    cleaned, seen = [], set()
    for index, axis in enumerate(axes):
        name, values = axis.get("parameter"), axis.get("values")
        if not isinstance(name, str) or not name:
            raise ValidationFailed(
                f"Invalid input: axes.{index}.parameter: required.",
                details={f"axes.{index}.parameter": ["Required."]},
            )
        if name in seen:
            raise ValidationFailed(
                f"Invalid input: axes.{index}.parameter: '{name}' is varied twice.",
                details={f"axes.{index}.parameter": ["Each parameter may be varied once."]},
            )
        if not isinstance(values, list) or not values:
            raise ValidationFailed(
                f"Invalid input: axes.{index}.values: a non-empty list is required.",
                details={f"axes.{index}.values": ["A non-empty list is required."]},
            )
        seen.add(name)
        cleaned.append({"parameter": name, "values": list(values)})
    return cleaned


@transaction.atomic
def sweep_create(
    actor: Actor,
    *,
    project_id: int,
    algorithm: str,
    axes: Sequence[Mapping[str, Any]],
    base_parameters: Mapping[str, Any] | None = None,
    seeds_per_point: int = 1,
    seed: int | None = None,
    name: str = "",
    service_id: int | None = None,
) -> ParameterSweep:
    """A parametric study over one parameter or a grid of several; all children queued
    (with `service_id`, to run on that registered service)."""
    project, usage = _writable_project(actor, project_id)
    service = remote_target(actor, service_id) if service_id is not None else None
    clean_axes = _validate_axes(axes)
    base = dict(base_parameters or {})
    validate_parameters(algorithm, base, prefix="base_parameters")
    for i, axis in enumerate(clean_axes):
        for j, value in enumerate(axis["values"]):
            _validate_axis_value(algorithm, base, axis["parameter"], value, f"axes.{i}.values.{j}")
    if not 1 <= seeds_per_point <= 1000:
        raise ValidationFailed(
            "Invalid input: seeds_per_point: must be between 1 and 1000.",
            details={"seeds_per_point": ["Must be between 1 and 1000."]},
        )
    points = sweep_points(clean_axes)
    total = len(points) * seeds_per_point
    _enforce_quotas(actor, total, path="axes", usage=usage)
    # Seeds derive from one sweep seed, so a sweep is reproducible from its row.
    base_seed = _validate_seed(seed, "seed")
    specs = [
        SimulationSpec(algorithm, {**base, **point}, (base_seed + i) % MAX_SEED)
        for i, (point, _) in enumerate(itertools.product(points, range(seeds_per_point)))
    ]
    sweep = ParameterSweep.objects.create(
        project=project,
        name=name.strip(),
        algorithm=algorithm,
        base_parameters=base,
        axes=clean_axes,
        seeds_per_point=seeds_per_point,
        status=Status.QUEUED,
        total=total,
        created_by_id=actor.user_id,
    )
    # Each value passed alone; a combination can still clash (named by its grid index).
    rows = _build(actor, project, specs, queue=True, sweep=sweep, path_of=lambda i: f"grid.{i}.")
    _insert_and_enqueue(project, rows, queue=True, service=service)
    audit_record(
        actor,
        "sweep.create",
        obj=sweep,
        organization_id=project.organization_id,
        details={
            "algorithm": algorithm,
            "count": total,
            "axes": [a["parameter"] for a in clean_axes],
            **({"service_id": service.pk} if service is not None else {}),
        },
    )
    return sweep


def sweep_refresh_status(sweep_id: int | None) -> None:
    """The sweep's status follows its children (called whenever one of them changes).

    Refreshes are serialised on the sweep's row: two workers finishing the last two
    children at once must not let the one that read the older state write last (the
    sweep would stay RUNNING for ever with every child finished).
    """
    if sweep_id is None:
        return
    with transaction.atomic():
        current = (
            ParameterSweep.objects.select_for_update()
            .filter(pk=sweep_id)
            .values_list("status", flat=True)
            .first()
        )
        if current is None:
            return
        status = sweep_status_of(
            Simulation.objects.filter(sweep_id=sweep_id).values_list("status", flat=True).distinct()
        )
        if status is None:
            return
        if status != current:
            finished_at = timezone.now() if status in FINISHED else None
            ParameterSweep.objects.filter(pk=sweep_id).update(
                status=status, finished_at=finished_at
            )


def sweeps_settle(limit: int = 1000) -> int:
    """Refresh the sweeps still marked queued or running though none of their children
    is: a process killed between a child's last commit and the sweep's refresh (which
    runs after that commit) would leave them so for ever. The reaper calls this; the
    number of sweeps refreshed."""
    children = Simulation.objects.filter(sweep=OuterRef("pk"))
    stuck = list(
        ParameterSweep.objects.filter(Exists(children), status__in=ACTIVE)
        .exclude(Exists(children.filter(status__in=ACTIVE)))
        .values_list("pk", flat=True)[:limit]
    )
    for sweep_id in stuck:
        sweep_refresh_status(sweep_id)
    return len(stuck)

"""Reads of simulations and sweeps, always scoped to what the actor may see."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.accounts.selectors import organization_ids_with_role
from simlab.core.actor import Actor
from simlab.core.errors import NotFound
from simlab.engine.tiles import TileIndex, TileOutOfRange, render_tile
from simlab.projects.selectors import project_get
from simlab.registry.models import Kind, Service
from simlab.registry.selectors import USABLE, service_list
from simlab.simulations.eta import etas, states_with_etas
from simlab.simulations.events import STATE_FIELDS, state_of
from simlab.simulations.models import (
    ACTIVE,
    InteractiveSlot,
    ParameterSweep,
    RemoteRun,
    Simulation,
    Status,
)
from simlab.simulations.tiles import open_index, tiles_version


def _visible_simulations(actor: Actor) -> QuerySet[Simulation]:
    require_scope(actor, "read")
    if actor.is_system or actor.is_superuser:
        return Simulation.objects.all()
    return Simulation.objects.filter(
        project__organization_id__in=organization_ids_with_role(actor, Role.VIEWER)
    )


# --- where runs go: this SimLab or a registered service ------------------------------------
# The kinds that accept simulations (through WES: SimLab's own, or any WES server).
RUNNER_KINDS = (Kind.SIMLAB, Kind.WES)
# select_related() paths that bring a run's remote link and its service in the same query.
WITH_REMOTE = ("remote", "remote__service")


def unusable_reason(service: Service, now: datetime | None = None) -> str:
    """Why runs cannot be sent to `service` now ("" when they can): disabled, not up (or
    degraded) at its last check, or its circuit breaker open."""
    state = getattr(service, "state", None)
    if not service.enabled:
        return "disabled"
    if state is not None and state.breaker_until and state.breaker_until > (now or timezone.now()):
        return "its circuit breaker is open"
    if state is None or state.status not in USABLE:
        return f"status {state.status if state is not None else 'unknown'}"
    return ""


def usable_now(service: Service, now: datetime | None = None) -> bool:
    return not unusable_reason(service, now)


@dataclass(frozen=True)
class RunTarget:
    """A registered service a run may be sent to, as a form offers it."""

    id: int
    name: str
    kind: str
    unavailable: str  # why it cannot take runs now; "" when it can


def remote_targets(actor: Actor) -> list[RunTarget]:
    """The services `remote_target` accepts for the actor (those it sees that run
    simulations), by name; those not usable now say why."""
    now = timezone.now()
    services = service_list(actor).filter(kind__in=RUNNER_KINDS).order_by("name", "pk")
    return [
        RunTarget(service.pk, service.name, service.kind, unusable_reason(service, now))
        for service in services
    ]


def remote_of(simulation: Simulation) -> dict[str, Any] | None:
    """Where a run went, when it runs on a registered service (None: here). Reads the
    link loaded with WITH_REMOTE (no query then)."""
    try:
        run: RemoteRun = simulation.remote
    except RemoteRun.DoesNotExist:
        return None
    service = run.service
    return {
        "service_id": run.service_id,
        "service_name": service.name if service is not None else None,
        "remote_id": run.remote_id or None,
        "state": run.remote_state or None,
        "last_sync_at": run.last_contact_at if run.remote_id else None,
        "error": run.error,
    }


def simulation_list(
    actor: Actor,
    *,
    project_id: int | None = None,
    status: str | None = None,
    algorithm: str | None = None,
    sweep_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    flagged: bool | None = None,
    flag: str | None = None,
) -> QuerySet[Simulation]:
    if project_id is not None:
        project_get(actor, project_id)  # 404 for a foreign project, not an empty list
        qs = Simulation.objects.filter(project_id=project_id)
    else:
        qs = _visible_simulations(actor)
    if status:
        qs = qs.filter(status=status)
    if algorithm:
        qs = qs.filter(algorithm=algorithm)
    if sweep_id is not None:
        qs = qs.filter(sweep_id=sweep_id)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if flagged is not None:
        qs = qs.exclude(flags="") if flagged else qs.filter(flags="")
    if flag:
        qs = qs.filter(flags__contains=f",{flag},")
    return qs.select_related(*WITH_REMOTE)


def with_etas(simulations: list[Simulation]) -> list[Simulation]:
    """The simulations with `eta_s` set (seconds until they finish, or None): a few queries
    for the lot, none when every one has finished."""
    unfinished = [s.pk for s in simulations if s.status in (Status.QUEUED, Status.RUNNING)]

    found = etas(unfinished) if unfinished else {}
    for simulation in simulations:
        simulation.eta_s = found.get(simulation.pk)  # type: ignore[attr-defined]
    return simulations


def simulation_get(actor: Actor, simulation_id: int, *, minimum: Role = Role.VIEWER) -> Simulation:
    require_scope(actor, "read")
    simulation = (
        Simulation.objects.select_related("project", *WITH_REMOTE).filter(pk=simulation_id).first()
    )
    if simulation is None:
        raise NotFound("No such simulation.")
    require_role(actor, simulation.project.organization_id, minimum, what="simulation")
    return simulation


def simulation_live_state(actor: Actor, simulation_id: int) -> dict[str, Any]:
    """The live state (`simlab.simulations.events`) of a simulation the actor may see."""
    return _states_with_etas([state_of(simulation_get(actor, simulation_id))])[0]


def project_live_states(
    actor: Actor, project_id: int, *, finished_since: datetime
) -> list[dict[str, Any]]:
    """Live states of a project's unfinished simulations and of those finished since then.

    Every move to a finished status stamps `finished_at`, so polling this finds every
    change of a project without a row per change.
    """
    project_get(actor, project_id)
    changed = Q(status__in=ACTIVE) | Q(finished_at__gte=finished_since)
    rows = (
        Simulation.objects.filter(changed, project_id=project_id)
        .order_by("id")
        .values(*STATE_FIELDS)
    )
    return _states_with_etas([state_of(row) for row in rows])


def _states_with_etas(states: list[dict[str, Any]]) -> list[dict[str, Any]]:

    return states_with_etas(states)


def project_status_counts(actor: Actor, project_id: int) -> dict[str, int]:
    project_get(actor, project_id)
    rows = (
        Simulation.objects.filter(project_id=project_id)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    )
    return {row["status"]: row["n"] for row in rows}


def sweep_get(actor: Actor, sweep_id: int, *, minimum: Role = Role.VIEWER) -> ParameterSweep:
    require_scope(actor, "read")
    sweep = ParameterSweep.objects.select_related("project").filter(pk=sweep_id).first()
    if sweep is None:
        raise NotFound("No such sweep.")
    require_role(actor, sweep.project.organization_id, minimum, what="sweep")
    return sweep


def sweep_list(actor: Actor, *, project_id: int) -> QuerySet[ParameterSweep]:
    project_get(actor, project_id)
    return ParameterSweep.objects.filter(project_id=project_id)


def sweep_status_counts(sweep: ParameterSweep) -> dict[str, int]:
    rows = sweep.simulations.order_by().values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sweep_results(actor: Actor, sweep_id: int) -> dict[str, Any]:
    """The aggregate table: one row per point of the sweep; per metric the mean over its
    seeds (`metrics`), their sample standard deviation (`spread`, 0 for one seed) and how
    many succeeded runs reported it (`samples`)."""
    sweep = sweep_get(actor, sweep_id)
    axis_names = [axis["parameter"] for axis in sweep.axes]
    points: dict[tuple[Any, ...], dict[str, Any]] = {}
    children = sweep.simulations.order_by("id").values("id", "parameters", "status", "metrics")
    for child in children:
        key = tuple(child["parameters"].get(name) for name in axis_names)
        point = points.setdefault(
            key,
            {"point": dict(zip(axis_names, key, strict=True)), "simulations": [], "statuses": {}},
        )
        point["simulations"].append(child["id"])
        point["statuses"][child["status"]] = point["statuses"].get(child["status"], 0) + 1
        if child["status"] == "SUCCEEDED":
            point.setdefault("_values", []).append(child["metrics"])
    rows = []
    metric_names: set[str] = set()
    for point in points.values():
        values = point.pop("_values", [])
        means: dict[str, float] = {}
        spread: dict[str, float] = {}
        samples: dict[str, int] = {}
        for name in sorted({k for m in values for k, v in m.items() if _numeric(v)}):
            seen = [float(m[name]) for m in values if _numeric(m.get(name))]
            means[name] = statistics.fmean(seen)
            spread[name] = statistics.stdev(seen) if len(seen) > 1 else 0.0
            samples[name] = len(seen)
        metric_names.update(means)
        rows.append(
            {
                **point,
                "completed": len(values),
                "metrics": means,
                "spread": spread,
                "samples": samples,
            }
        )
    return {
        "sweep": sweep.pk,
        "algorithm": sweep.algorithm,
        "axes": sweep.axes,
        "status": sweep.status,
        "total": sweep.total,
        "counts": sweep_status_counts(sweep),
        "metric_names": sorted(metric_names),
        "rows": rows,
    }


def interactive_runs_live(user_id: int) -> int:
    """How many interactive runs of the user hold a slot now (unexpired leases)."""
    return InteractiveSlot.objects.filter(user_id=user_id, lease_until__gte=timezone.now()).count()


def unfinished_count(actor: Actor) -> int:
    """The actor's unfinished simulations: what the quota on them counts."""
    if actor.user_id is None:
        return 0
    return Simulation.objects.filter(created_by_id=actor.user_id, status__in=ACTIVE).count()


def simulation_tiles(actor: Actor, simulation_id: int) -> tuple[Simulation, TileIndex, str]:
    """The run, its tile pyramid and the pyramid's version tag (NotFound if it has none)."""
    simulation = simulation_get(actor, simulation_id)
    if not simulation.result_ready("result_tiles"):
        raise NotFound(
            "This result has no tile pyramid: only large aggregates have one.",
            code="no_tiles",
            details={"status": simulation.status},
        )
    name = simulation.result_tiles.name or ""
    finished = simulation.finished_at.isoformat() if simulation.finished_at else ""
    version = tiles_version(name, finished)
    return simulation, open_index(name, version), version


def simulation_tile(
    actor: Actor, simulation_id: int, *, z: int, x: int, y: int
) -> tuple[bytes, str]:
    """Tile (z, x, y) of the run's picture as PNG bytes, with the pyramid's version tag.
    A coordinate outside the pyramid is NotFound naming it."""
    _, index, version = simulation_tiles(actor, simulation_id)
    try:
        return render_tile(index, z, x, y), version
    except TileOutOfRange as exc:
        raise NotFound(str(exc), code="tile_out_of_range", details={exc.field: [str(exc)]}) from exc


def status_totals() -> dict[str, int]:
    """Simulations by status over the whole platform (operators' metrics, no actor)."""
    from simlab.simulations.models import Status

    totals = dict.fromkeys(Status.values, 0)
    for row in Simulation.objects.values("status").annotate(n=Count("id")).order_by():
        totals[row["status"]] = row["n"]
    return totals

"""Every change to simulations and sweeps, whichever door it comes through.

Each function checks the actor's role and scope, validates parameters with the
engine's pydantic model, enforces quotas, writes one audit row and enqueues work
only after the transaction commits.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pydantic
import structlog
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from simlab import engine
from simlab.accounts.models import ROLE_RANK, Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.platform.db import insert_returning_ids, model_defaults
from simlab.projects.models import Project
from simlab.projects.selectors import project_get, project_get_with
from simlab.simulations import dispatch, events
from simlab.simulations.models import ACTIVE, FINISHED, ParameterSweep, Simulation, Status
from simlab.simulations.selectors import simulation_get, sweep_get

MAX_SEED = 2**63 - 1


log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SimulationSpec:
    """One simulation to create: algorithm, raw parameters, optional seed."""

    algorithm: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None


# --- validation -----------------------------------------------------------------------------
def pydantic_details(exc: pydantic.ValidationError, prefix: str) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for error in exc.errors():
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        details.setdefault(path, []).append(error["msg"])
    return details


def validate_parameters(
    algorithm: str, parameters: Mapping[str, Any], *, prefix: str = "parameters"
) -> dict[str, Any]:
    """Normalised parameters (defaults filled in) or ValidationFailed naming the field."""
    where = prefix.rsplit(".", 1)[0] + "." if "." in prefix else ""
    if not isinstance(parameters, Mapping):
        raise ValidationFailed(
            f"Invalid input: {prefix}: must be an object.", details={prefix: ["Must be an object."]}
        )
    try:
        model = engine.validate_params(algorithm, parameters)
    except engine.UnknownAlgorithm:
        known = ", ".join(sorted(engine.algorithms()))
        raise ValidationFailed(
            f"Invalid input: {where}algorithm: unknown algorithm '{algorithm}'.",
            details={f"{where}algorithm": [f"Unknown algorithm '{algorithm}'. Known: {known}."]},
        ) from None
    except pydantic.ValidationError as exc:
        details = pydantic_details(exc, prefix)
        first_field, messages = next(iter(details.items()))
        raise ValidationFailed(
            f"Invalid input: {first_field}: {messages[0]}", details=details
        ) from None
    normalised: dict[str, Any] = model.model_dump(mode="json")
    return normalised


def _validate_seed(seed: int | None, path: str) -> int:
    if seed is None:
        return secrets.randbelow(MAX_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValidationFailed(
            f"Invalid input: {path}: must be an integer in [0, 2^63).",
            details={path: ["Must be an integer in [0, 2^63)."]},
        )
    return seed


# --- quotas ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Usage:
    """A user's unfinished simulations and those created in the last minute."""

    active: int
    recent: int

    @classmethod
    def from_counts(cls, counts: Sequence[Any]) -> _Usage:
        """From the values of `_usage_sql`'s two expressions."""
        active, recent = counts
        return cls(int(active), int(recent))


def _enforce_quotas(actor: Actor, count: int, *, path: str, usage: _Usage | None = None) -> None:
    """Refuse `count` more simulations beyond a quota; `usage` if already read, else read."""
    limit = settings.SIMLAB_MAX_BATCH_SIZE
    if count > limit:
        raise ValidationFailed(
            f"Invalid input: {path}: {count} simulations exceed the batch limit of {limit}.",
            code="batch_too_large",
            details={path: [f"At most {limit} simulations per request."], "limit": limit},
        )
    if count == 0:
        raise ValidationFailed(
            f"Invalid input: {path}: nothing to create.", details={path: ["Must not be empty."]}
        )
    if actor.user_id is None:
        return  # system work is not metered
    if usage is None:
        sql, params = _usage_sql(actor.user_id)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            usage = _Usage.from_counts(cursor.fetchone())
    if usage.active + count > settings.SIMLAB_MAX_ACTIVE_PER_USER:
        raise QuotaExceeded(
            f"You have {usage.active} unfinished simulations; the limit is "
            f"{settings.SIMLAB_MAX_ACTIVE_PER_USER}. Wait for some to finish.",
            code="active_quota_exceeded",
            details={
                "active": usage.active,
                "requested": count,
                "limit": settings.SIMLAB_MAX_ACTIVE_PER_USER,
            },
        )
    if usage.recent + count > settings.SIMLAB_MAX_CREATES_PER_MINUTE:
        raise QuotaExceeded(
            f"Rate limit: {settings.SIMLAB_MAX_CREATES_PER_MINUTE} simulations per minute.",
            code="rate_limited",
            details={
                "created_last_minute": usage.recent,
                "requested": count,
                "limit_per_minute": settings.SIMLAB_MAX_CREATES_PER_MINUTE,
                "retry_after_s": 60,
            },
        )


def _usage_sql(user_id: int) -> tuple[str, list[Any]]:
    """The two counts of `_Usage` as SELECT expressions, each through its own covering
    index (user+status, user+created_at).

    Written in SQL because it runs on every create: built by the ORM (subqueries, an
    anchor table to select from) it cost more than all the other queries of a create."""
    table = connection.ops.quote_name(Simulation._meta.db_table)
    marks = ", ".join(["%s"] * len(ACTIVE))
    sql = (
        f"(SELECT COUNT(*) FROM {table} WHERE created_by_id = %s"  # noqa: S608
        f" AND status IN ({marks})),"
        f" (SELECT COUNT(*) FROM {table} WHERE created_by_id = %s AND created_at >= %s)"
    )
    since = timezone.now() - timedelta(minutes=1)
    active_statuses = [status.value for status in ACTIVE]
    params = [user_id, *active_statuses, user_id, connection.ops.adapt_datetimefield_value(since)]
    return sql, params


# --- creating and queueing ------------------------------------------------------------------
def _writable_project(actor: Actor, project_id: int) -> tuple[Project, _Usage | None]:
    """The project to create in, with the actor's usage for the quotas read in the same
    query (None for system work, which is not metered)."""
    require_scope(actor, "write")
    if actor.user_id is None:
        return project_get(actor, project_id, minimum=Role.MEMBER), None
    sql, params = _usage_sql(actor.user_id)
    project, counts = project_get_with(
        actor, project_id, minimum=Role.MEMBER, columns=sql, params=params
    )
    return project, _Usage.from_counts(counts)


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
) -> ParameterSweep:
    """A parametric study over one parameter or a grid of several; all children queued."""
    project, usage = _writable_project(actor, project_id)
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
    _insert_and_enqueue(rows, queue=True)
    audit_record(
        actor,
        "sweep.create",
        obj=sweep,
        organization_id=project.organization_id,
        details={
            "algorithm": algorithm,
            "count": total,
            "axes": [a["parameter"] for a in clean_axes],
        },
    )
    return sweep


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
    audit_record(actor, "simulation.queue", obj=simulation)
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
    audit_record(actor, "simulation.cancel", obj=simulation)
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
    audit_record(actor, "simulation.retry", obj=simulation)
    simulation.refresh_from_db()
    if simulation.sweep_id is not None:
        transaction.on_commit(lambda: sweep_refresh_status(simulation.sweep_id))
    return simulation


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
        statuses = set(
            Simulation.objects.filter(sweep_id=sweep_id).values_list("status", flat=True).distinct()
        )
        if not statuses:
            return
        if statuses & {Status.RUNNING} or (statuses & set(FINISHED) and statuses & set(ACTIVE)):
            status = Status.RUNNING
        elif statuses <= {Status.QUEUED, Status.CREATED}:
            status = Status.QUEUED
        elif Status.FAILED in statuses:
            status = Status.FAILED
        elif statuses == {Status.CANCELLED}:
            status = Status.CANCELLED
        else:
            status = Status.SUCCEEDED
        if status != current:
            finished_at = timezone.now() if status in FINISHED else None
            ParameterSweep.objects.filter(pk=sweep_id).update(
                status=status, finished_at=finished_at
            )


def specs_from(items: Iterable[Mapping[str, Any]]) -> list[SimulationSpec]:
    """Specs from plain dicts (`algorithm`, `parameters`, optional `seed`)."""
    return [
        SimulationSpec(item["algorithm"], item.get("parameters") or {}, item.get("seed"))
        for item in items
    ]


# --- deleting -------------------------------------------------------------------------------
def _delete_result_files(simulations: Iterable[Simulation]) -> None:
    """After the commit: a rolled-back delete keeps its files."""
    names = [name for s in simulations for name in (s.result_npz.name, s.result_png.name) if name]

    def remove() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:  # already gone, or storage down: the row is gone either way
                log.warning("result_file_not_deleted", name=name)

    transaction.on_commit(remove)


def _refuse_if_active(simulations: Iterable[Simulation], what: str) -> None:
    active = [s.pk for s in simulations if s.status in (Status.QUEUED, Status.RUNNING)]
    if active:
        raise Conflict(
            f"Cancel the queued or running simulations first: {what} still has {len(active)}.",
            code="simulations_active",
            details={"active_simulations": active[:100]},
        )


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
    _refuse_if_active([simulation], "it")
    if simulation.sweep_id is not None:
        raise Conflict(
            "This simulation belongs to a sweep: delete the sweep.",
            code="part_of_sweep",
            details={"sweep": simulation.sweep_id},
        )
    _delete_result_files([simulation])
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
    _refuse_if_active(children, "the sweep")
    _delete_result_files(children)
    audit_record(
        actor,
        "sweep.delete",
        obj=sweep,
        organization_id=sweep.project.organization_id,
        details={"simulations": len(children), "project": sweep.project_id},
    )
    sweep.delete()  # its simulations cascade

"""The direct door: the service layer enforces roles, validation, quotas and audit itself."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.core.errors import Conflict, NotFound, PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.simulations import selectors, services
from simlab.simulations.models import ParameterSweep, Simulation, Status
from simlab.usage.models import Kind
from simlab.usage.services import usage_record
from tests.factories import ProjectFactory, actor_for, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_project() -> Any:
    user = member(Role.MEMBER)
    return user, ProjectFactory(organization=user.memberships.get().organization)


def test_create_stores_normalised_parameters_and_one_audit_row(owner_project: Any) -> None:
    user, project = owner_project
    simulation = services.simulation_create(
        actor_for(user, source=Source.CLI),
        project_id=project.pk,
        algorithm="dla",
        parameters={"n_particles": 500},
    )
    assert simulation.status == Status.QUEUED
    assert simulation.parameters["n_particles"] == 500
    assert simulation.parameters["dimension"] == 2  # defaults stored for reproducibility
    assert 0 <= simulation.seed < 2**63
    assert simulation.created_by == user
    entry = AuditLog.objects.get(action="simulation.create")
    assert (entry.source, entry.object_id) == ("cli", str(simulation.pk))


def test_batch_is_one_insert_and_one_audit_row(owner_project: Any) -> None:
    user, project = owner_project
    specs = [services.SimulationSpec("dla", {"n_particles": 100}, seed) for seed in range(250)]
    ids = services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=specs)
    assert len(ids) == 250
    rows = Simulation.objects.filter(pk__in=ids).order_by("pk")
    assert [r.seed for r in rows] == list(range(250))
    assert {r.status for r in rows} == {Status.QUEUED}
    (entry,) = AuditLog.objects.filter(action="simulation.create_batch")
    assert entry.details["count"] == 250
    assert AuditLog.objects.count() == 1


@pytest.mark.parametrize(
    ("algorithm", "parameters", "field"),
    [
        ("dla", {"n_particles": "many"}, "parameters.n_particles"),
        ("dla", {"n_particles": -3}, "parameters.n_particles"),
        ("dla", {"sticking_probability": 1.5}, "parameters.sticking_probability"),
        ("dla", {"colour": "red"}, "parameters.colour"),
        ("no_such_model", {}, "algorithm"),
    ],
)
def test_bad_parameters_name_the_field(
    owner_project: Any, algorithm: str, parameters: dict[str, Any], field: str
) -> None:
    user, project = owner_project
    with pytest.raises(ValidationFailed) as info:
        services.simulation_create(
            actor_for(user), project_id=project.pk, algorithm=algorithm, parameters=parameters
        )
    assert field in info.value.details
    assert field in info.value.message
    assert not Simulation.objects.exists()


def test_bad_item_in_a_batch_names_its_index_and_nothing_is_created(owner_project: Any) -> None:
    user, project = owner_project
    specs = [services.SimulationSpec("dla", {"n_particles": 10})] * 3 + [
        services.SimulationSpec("dla", {"n_particles": 0})
    ]
    with pytest.raises(ValidationFailed) as info:
        services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=specs)
    assert "simulations.3.parameters.n_particles" in info.value.details
    assert not Simulation.objects.exists()


def test_viewer_cannot_create_and_foreign_project_is_not_found(owner_project: Any) -> None:
    user, project = owner_project
    viewer = member(Role.VIEWER, project.organization)
    with pytest.raises(PermissionDenied):
        services.simulation_create(actor_for(viewer), project_id=project.pk, algorithm="dla")
    stranger = member(Role.OWNER)
    with pytest.raises(NotFound):
        services.simulation_create(actor_for(stranger), project_id=project.pk, algorithm="dla")
    simulation = services.simulation_create(actor_for(user), project_id=project.pk, algorithm="dla")
    with pytest.raises(NotFound):
        selectors.simulation_get(actor_for(stranger), simulation.pk)
    assert selectors.simulation_get(actor_for(viewer), simulation.pk) == simulation
    with pytest.raises(PermissionDenied):
        services.simulation_cancel(actor_for(viewer), simulation.pk)


def test_quotas_hold_on_the_direct_door(owner_project: Any, settings: SettingsWrapper) -> None:
    user, project = owner_project
    settings.SIMLAB_MAX_BATCH_SIZE = 5
    spec = services.SimulationSpec("dla", {"n_particles": 10})
    with pytest.raises(ValidationFailed) as too_big:
        services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=[spec] * 6)
    assert too_big.value.code == "batch_too_large"

    settings.SIMLAB_MAX_ACTIVE_PER_USER = 7
    services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=[spec] * 5)
    with pytest.raises(QuotaExceeded) as active:
        services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=[spec] * 3)
    assert active.value.code == "active_quota_exceeded"
    assert active.value.status_code == 429

    settings.SIMLAB_MAX_ACTIVE_PER_USER = 1000
    settings.SIMLAB_MAX_CREATES_PER_MINUTE = 8
    with pytest.raises(QuotaExceeded) as rate:
        services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=[spec] * 4)
    assert rate.value.code == "rate_limited"
    assert Simulation.objects.count() == 5


def test_an_organisations_cpu_seconds_of_the_day_come_from_the_usage_rollup(
    owner_project: Any, settings: SettingsWrapper
) -> None:
    user, project = owner_project
    organization_id = project.organization_id
    settings.SIMLAB_MAX_CPU_S_PER_ORG_DAY = 2

    def used(key: str, cpu_ms: int, organization: int = organization_id) -> None:
        with transaction.atomic():
            usage_record(organization_id=organization, key=key, kind=Kind.CPU_MS, quantity=cpu_ms)

    used("run:1:cpu", 1_500)
    services.simulation_create(actor_for(user), project_id=project.pk, algorithm="eden")
    used("run:2:cpu", 600)
    actor = actor_for(user)
    for create in (
        lambda: services.simulation_create(actor, project_id=project.pk, algorithm="eden"),
        lambda: services.sweep_create(
            actor,
            project_id=project.pk,
            algorithm="random_walk",
            axes=[{"parameter": "steps", "values": [100, 200]}],
        ),
    ):
        with pytest.raises(QuotaExceeded) as refused:
            create()
        assert refused.value.code == "cpu_quota_exceeded"
        assert refused.value.status_code == 429
        assert refused.value.details["used_cpu_s"] == pytest.approx(2.1)
    # Another organisation's day is its own; no limit: no refusal.
    other = member(Role.OWNER)
    other_project = ProjectFactory(organization=other.memberships.get().organization)
    used("run:3:cpu", 500, organization=other_project.organization_id)
    services.simulation_create(actor_for(other), project_id=other_project.pk, algorithm="eden")
    settings.SIMLAB_MAX_CPU_S_PER_ORG_DAY = 0
    services.simulation_create(actor_for(user), project_id=project.pk, algorithm="eden")


def test_cancel_and_retry(owner_project: Any) -> None:
    user, project = owner_project
    actor = actor_for(user)
    simulation = services.simulation_create(actor, project_id=project.pk, algorithm="eden")
    cancelled = services.simulation_cancel(actor, simulation.pk)
    assert cancelled.status == Status.CANCELLED
    with pytest.raises(Conflict):
        services.simulation_cancel(actor, simulation.pk)
    retried = services.simulation_retry(actor, simulation.pk)
    assert retried.status == Status.QUEUED
    with pytest.raises(Conflict):
        services.simulation_retry(actor, simulation.pk)
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["simulation.create", "simulation.cancel", "simulation.retry"]


def test_running_simulation_cancel_is_a_request(owner_project: Any) -> None:
    user, project = owner_project
    simulation = services.simulation_create(
        actor_for(user), project_id=project.pk, algorithm="eden"
    )
    Simulation.objects.filter(pk=simulation.pk).update(status=Status.RUNNING)
    result = services.simulation_cancel(actor_for(user), simulation.pk)
    assert result.status == Status.RUNNING
    assert result.cancel_requested is True


def test_sweep_over_a_grid_creates_every_combination(owner_project: Any) -> None:
    user, project = owner_project
    sweep = services.sweep_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        base_parameters={"n_particles": 50},
        axes=[
            {"parameter": "sticking_probability", "values": [0.25, 0.5, 1.0]},
            {"parameter": "dimension", "values": [2, 3]},
        ],
        seeds_per_point=2,
        seed=100,
    )
    assert sweep.total == 12
    children = Simulation.objects.filter(sweep=sweep)
    combos = {(c.parameters["sticking_probability"], c.parameters["dimension"]) for c in children}
    assert combos == {(p, d) for p in (0.25, 0.5, 1.0) for d in (2, 3)}
    assert sorted(children.values_list("seed", flat=True)) == list(range(100, 112))
    assert AuditLog.objects.filter(action="sweep.create").get().details["count"] == 12


@pytest.mark.parametrize(
    ("axes", "field"),
    [
        ([], "axes"),
        ([{"parameter": "sticking_probability", "values": []}], "axes.0.values"),
        ([{"parameter": "sticking_probability", "values": [0.5, 7]}], "axes.0.values.1"),
        (
            [
                {"parameter": "n_particles", "values": [1]},
                {"parameter": "n_particles", "values": [2]},
            ],
            "axes.1.parameter",
        ),
    ],
)
def test_bad_sweep_axes_name_the_field(owner_project: Any, axes: Any, field: str) -> None:
    user, project = owner_project
    with pytest.raises(ValidationFailed) as info:
        services.sweep_create(actor_for(user), project_id=project.pk, algorithm="dla", axes=axes)
    assert field in info.value.details
    assert not ParameterSweep.objects.exists()


def _sweep_of_two(owner_project: Any) -> tuple[ParameterSweep, Simulation, Simulation]:
    """A sweep with two children, and the children in creation order."""
    user, project = owner_project
    sweep = services.sweep_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="eden",
        axes=[{"parameter": "n_particles", "values": [10, 20]}],
    )
    first, second = Simulation.objects.filter(sweep=sweep).order_by("pk")
    return sweep, first, second


def test_sweep_status_follows_children(owner_project: Any) -> None:
    sweep, first, second = _sweep_of_two(owner_project)
    Simulation.objects.filter(pk=first.pk).update(status=Status.SUCCEEDED)
    services.sweep_refresh_status(sweep.pk)
    assert ParameterSweep.objects.get(pk=sweep.pk).status == Status.RUNNING
    Simulation.objects.filter(pk=second.pk).update(status=Status.FAILED)
    services.sweep_refresh_status(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == Status.FAILED
    assert sweep.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_read_before_the_last_child_finished_cannot_write_last(
    owner_project: Any,
) -> None:
    """Two workers finish the last two children at once: the sweep ends SUCCEEDED."""
    sweep, first, second = _sweep_of_two(owner_project)
    Simulation.objects.filter(pk=first.pk).update(status=Status.SUCCEEDED)
    Simulation.objects.filter(pk=second.pk).update(status=Status.RUNNING)
    services.sweep_refresh_status(sweep.pk)
    assert ParameterSweep.objects.get(pk=sweep.pk).status == Status.RUNNING

    # Worker B finishes the last child and writes the sweep's new status, in one
    # transaction still open while worker A's refresh starts: A must not read the old
    # state and write it after B's commit.
    locked, a_started = threading.Event(), threading.Event()

    def worker_b() -> None:
        with transaction.atomic():
            ParameterSweep.objects.select_for_update().filter(pk=sweep.pk).exists()
            Simulation.objects.filter(pk=second.pk).update(status=Status.SUCCEEDED)
            ParameterSweep.objects.filter(pk=sweep.pk).update(
                status=Status.SUCCEEDED, finished_at=timezone.now()
            )
            locked.set()
            a_started.wait(10)
            time.sleep(0.3)  # A is reading, or waiting for B, now
        connection.close()

    def worker_a() -> None:
        locked.wait(10)
        a_started.set()
        services.sweep_refresh_status(sweep.pk)
        connection.close()

    threads = [threading.Thread(target=worker_b), threading.Thread(target=worker_a)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sweep.refresh_from_db()
    assert sweep.status == Status.SUCCEEDED
    assert sweep.finished_at is not None


def _statements(queries: list[dict[str, str]]) -> list[str]:
    """The SQL verbs of captured queries, transaction control left out."""
    verbs = [q["sql"].split(None, 1)[0].upper() for q in queries]
    return [v for v in verbs if v in {"SELECT", "INSERT", "UPDATE", "DELETE"}]


CREATE_STATEMENTS = ["SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]


def test_create_is_five_statements_whatever_the_batch_and_returns_the_stored_row(
    owner_project: Any,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user, project = owner_project
    with CaptureQueriesContext(connection) as queries:
        simulation = services.simulation_create(
            actor_for(user), project_id=project.pk, algorithm="dla", parameters={"n_particles": 50}
        )
    # project, role and both quota counts in one query, the row, the audit row, the usage
    # events and their daily rollup (metered in the create's transaction): nothing read back.
    assert _statements(queries.captured_queries) == CREATE_STATEMENTS
    stored = Simulation.objects.get(pk=simulation.pk)
    fields = [f.attname for f in Simulation._meta.concrete_fields]
    assert {f: getattr(simulation, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert not simulation._state.adding
    with CaptureQueriesContext(connection) as queries:
        services.simulation_create_batch(
            actor_for(user),
            project_id=project.pk,
            specs=[services.SimulationSpec("dla", {"n_particles": 50})] * 20,
        )
    assert _statements(queries.captured_queries) == CREATE_STATEMENTS  # 20 runs, the same


def test_quotas_count_only_the_users_unfinished_and_recent_simulations(
    owner_project: Any, settings: SettingsWrapper
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    user, project = owner_project
    other = member(Role.MEMBER, project.organization)
    spec = services.SimulationSpec("dla", {"n_particles": 10})
    mine = services.simulation_create_batch(
        actor_for(user), project_id=project.pk, specs=[spec] * 5
    )
    services.simulation_create_batch(actor_for(other), project_id=project.pk, specs=[spec] * 9)
    # Two of mine finished, and an hour old: neither active nor recent.
    Simulation.objects.filter(pk__in=mine[:2]).update(
        status=Status.SUCCEEDED, created_at=timezone.now() - timedelta(hours=1)
    )
    settings.SIMLAB_MAX_ACTIVE_PER_USER = 4
    with pytest.raises(QuotaExceeded) as active:
        services.simulation_create_batch(actor_for(user), project_id=project.pk, specs=[spec] * 2)
    assert active.value.details["active"] == 3
    services.simulation_create(actor_for(user), project_id=project.pk, algorithm="dla")

    settings.SIMLAB_MAX_ACTIVE_PER_USER = 1000
    settings.SIMLAB_MAX_CREATES_PER_MINUTE = 4  # 3 + 1 made in the last minute: full
    with pytest.raises(QuotaExceeded) as rate:
        services.simulation_create(actor_for(user), project_id=project.pk, algorithm="dla")
    assert rate.value.details["created_last_minute"] == 4


def test_a_key_bound_to_another_organisation_sees_no_project(owner_project: Any) -> None:
    from tests.factories import OrganizationFactory

    user, project = owner_project
    elsewhere = OrganizationFactory()
    bound = actor_for(user, organization_id=elsewhere.pk)
    with pytest.raises(NotFound):
        services.simulation_create(bound, project_id=project.pk, algorithm="dla")
    at_home = actor_for(user, organization_id=project.organization_id)
    assert services.simulation_create(at_home, project_id=project.pk, algorithm="dla").pk
    superuser = actor_for(member(Role.VIEWER), is_superuser=True)
    assert services.simulation_create(superuser, project_id=project.pk, algorithm="dla").pk


def test_foreign_key_lookups_use_the_composite_indexes_only() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "simulations_simulation")
    single = {
        tuple(c["columns"])
        for c in constraints.values()
        if c["index"] and not c["primary_key"] and len(c["columns"]) == 1
    }
    assert single.isdisjoint({("project_id",), ("sweep_id",), ("created_by_id",)})
    leading = {c["columns"][0] for c in constraints.values() if c["index"]}
    assert {"project_id", "sweep_id", "created_by_id"} <= leading


def test_created_rows_write_every_field_of_the_model(owner_project: Any) -> None:
    """Creates insert rows without the model's `save()`: the rows once listed each field's
    default by hand, so a field added with a default made every create fail. Now every
    concrete field is in the row, from the model's own defaults."""
    user, project = owner_project
    from simlab.simulations.services.simulations import _build

    rows = _build(actor_for(user), project, [services.SimulationSpec("dla")], queue=True)
    every_field = {f.attname for f in Simulation._meta.concrete_fields if not f.primary_key}
    assert set(rows[0]) == every_field
    unset = {name for name, value in rows[0].items() if value is None}
    nullable = {f.attname for f in Simulation._meta.concrete_fields if f.null}
    assert unset <= nullable  # nothing NOT NULL is left without a value

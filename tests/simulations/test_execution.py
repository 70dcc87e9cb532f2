"""A worker's run as its user sees it: `compiling` while the model's kernels load, then
`running` with progress, then a finished status with no phase."""

from __future__ import annotations

from typing import Any

import pytest

from simlab.client import SimLabClient
from simlab.engine import warmup
from simlab.simulations import execution
from simlab.simulations.events import Tracker, state_of
from simlab.simulations.models import (
    ATTEMPT_FILES,
    ParameterSweep,
    Phase,
    Simulation,
    Status,
    attempt_path,
)
from simlab.simulations.services import SimulationSpec, simulation_create_batch, sweep_create
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_DLA = {"n_particles": 200}


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """This process as a worker that has run no model yet (nothing prepared)."""
    prepared: set[str] = set()
    monkeypatch.setattr(warmup, "_prepared", prepared)
    return prepared


def _queued(algorithm: str = "dla", parameters: dict[str, Any] | None = None) -> int:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    (pk,) = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec(algorithm, parameters or SMALL_DLA)],
        queue=False,
    )
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)
    return pk


def test_a_run_claimed_before_its_kernels_are_loaded_says_compiling(
    fresh_process: set[str],
) -> None:
    pk = _queued()
    attempt = execution.claim(pk, "task-1")
    assert attempt == 1
    simulation = Simulation.objects.get(pk=pk)
    assert simulation.phase == Phase.COMPILING
    assert state_of(simulation)["phase"] == "compiling"

    with execution._Reporter(simulation, attempt) as reporter:
        reporter.prepare_engine("dla")
    assert warmup.is_prepared("dla")
    simulation.refresh_from_db()
    assert (simulation.status, simulation.phase) == (Status.RUNNING, Phase.RUNNING)
    assert simulation.progress == 0.0


def test_once_loaded_a_run_is_claimed_straight_into_running(fresh_process: set[str]) -> None:
    warmup.prepare("dla")
    dla, ising = _queued(), _queued("ising", {"size": 8, "sweeps": 100, "thermalization": 10})
    execution.claim(dla, "task-1")
    execution.claim(ising, "task-2")  # another model, not loaded here yet
    phases = dict(Simulation.objects.filter(pk__in=[dla, ising]).values_list("pk", "phase"))
    assert phases == {dla: Phase.RUNNING, ising: Phase.COMPILING}


def test_a_finished_run_shows_no_phase(fresh_process: set[str]) -> None:
    pk = _queued()
    assert execution.execute(pk, task_id="task-1") == Status.SUCCEEDED
    simulation = Simulation.objects.get(pk=pk)
    assert state_of(simulation)["phase"] is None
    assert simulation.metrics["n_particles"] == SMALL_DLA["n_particles"]


def test_a_phase_change_is_a_status_message_for_live_sockets() -> None:
    base = {"simulation_id": 1, "project_id": 1, "sweep_id": None, "attempt": 1}
    tracker = Tracker()
    compiling = {**base, "status": "RUNNING", "phase": "compiling", "progress": 0.0}
    running = {**base, "status": "RUNNING", "phase": "running", "progress": 0.0}
    assert tracker.message(compiling) == {"type": "status", **compiling}
    assert tracker.message(compiling) is None
    assert tracker.message(running) == {"type": "status", **running}
    assert tracker.message({**running, "progress": 0.5}) == {
        "type": "progress",
        **running,
        "progress": 0.5,
    }


def test_rest_and_the_client_show_the_compiling_phase(
    asgi_server: ServedApp, fresh_process: set[str]
) -> None:
    pk = _queued()
    execution.claim(pk, "task-1")
    simulation = Simulation.objects.select_related("project").get(pk=pk)
    user = simulation.created_by
    assert user is not None
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    with SimLabClient(asgi_server.url, token=access) as client:
        seen = client.simulation(pk)
    assert (seen.status, seen.phase, seen.status_text) == (
        "RUNNING",
        "compiling",
        "RUNNING (compiling)",
    )
    execution.execute(pk)  # a stale claim: not claimable again, nothing changes
    with SimLabClient(asgi_server.url, token=access) as client:
        assert client.simulation(pk).phase == "compiling"
    Simulation.objects.filter(pk=pk).update(status=Status.SUCCEEDED)
    with SimLabClient(asgi_server.url, token=access) as client:
        done = client.simulation(pk)
    assert (done.phase, done.status_text) == (None, "SUCCEEDED")


def test_a_rerun_removes_what_a_killed_attempt_stored() -> None:
    # Attempt 1 stored its files and its worker died before finishing: the reaper put the
    # run back in the queue. Attempt 2 must end with its own files only (attempt 1 can
    # never finish: the attempt number fences the row).
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    pk = _queued()
    assert execution.claim(pk, "task-1") == 1
    simulation = Simulation.objects.get(pk=pk)
    left = [
        default_storage.save(attempt_path(simulation, stem, 1), ContentFile(b"x"))
        for stem in ATTEMPT_FILES
    ]
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)  # what the reaper does

    assert execution.execute(pk, task_id="task-2") == Status.SUCCEEDED
    done = Simulation.objects.get(pk=pk)
    assert done.attempts == 2
    assert done.result_npz.name.endswith("result-2.npz")
    assert not any(default_storage.exists(name) for name in left)
    assert default_storage.exists(done.result_npz.name)
    assert default_storage.exists(done.result_png.name)


def test_the_reaper_settles_a_sweep_whose_refresh_was_lost() -> None:
    # A worker killed between committing a sweep's last child and refreshing the sweep
    # (the refresh runs after that commit) leaves the sweep running with every child
    # finished; the reaper settles it, and leaves alone a sweep with a child still queued.
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    axes = [{"parameter": "n_particles", "values": [100, 200]}]
    lost, waiting = (
        sweep_create(actor_for(user), project_id=project.pk, algorithm="dla", axes=axes)
        for _ in range(2)
    )
    ParameterSweep.objects.filter(pk__in=[lost.pk, waiting.pk]).update(status=Status.RUNNING)
    Simulation.objects.filter(sweep=lost).update(status=Status.SUCCEEDED)
    first = Simulation.objects.filter(sweep=waiting).order_by("pk").first()
    assert first is not None
    Simulation.objects.filter(pk=first.pk).update(status=Status.FAILED)

    assert execution.reap(requeue=False)["sweeps_settled"] == 1
    settled = ParameterSweep.objects.get(pk=lost.pk)
    assert (settled.status, settled.finished_at is not None) == (Status.SUCCEEDED, True)
    assert ParameterSweep.objects.get(pk=waiting.pk).status == Status.RUNNING
    assert execution.reap(requeue=False)["sweeps_settled"] == 0

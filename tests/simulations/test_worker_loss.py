"""A worker killed with SIGKILL mid-run: after a worker starts again, the simulation
finishes exactly once, with its attempts recorded, and nothing stays RUNNING."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings

from simlab.accounts.models import Role
from simlab.simulations import services
from simlab.simulations.models import Simulation, Status
from tests.conftest import wait_for
from tests.factories import ProjectFactory, actor_for, member
from tests.workers import WorkerProcess, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]


def test_simulation_survives_a_killed_worker(tmp_path: Path) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    # Long enough to be caught in the middle (seconds even on a fast machine), short
    # enough to finish.
    parameters = {"n_particles": 400_000}
    simulation = services.simulation_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        parameters=parameters,
        seed=3,
    )
    first = WorkerProcess(tmp_path / "first.log", beat=False)
    try:
        first.wait_ready()
        try:
            wait_for(
                lambda: Simulation.objects.filter(
                    pk=simulation.pk, status=Status.RUNNING, progress__gt=0.05
                ).exists(),
                timeout=120,
            )
        except AssertionError:
            row = Simulation.objects.values("status", "progress").get(pk=simulation.pk)
            raise AssertionError(f"never caught running: {row}\n{first.output()}") from None
    finally:
        first.kill()
    row = Simulation.objects.get(pk=simulation.pk)
    assert row.status == Status.RUNNING  # the dead worker left it mid-run
    assert row.attempts == 1
    assert row.progress < 1.0

    with running_worker(tmp_path / "second.log") as second:
        done = wait_for(
            lambda: (
                Simulation.objects.filter(pk=simulation.pk, status__in=["SUCCEEDED", "FAILED"])
                .values("status", "attempts", "result_npz", "metrics")
                .first()
            ),
            timeout=240,
            interval=0.5,
        )
        log = second.output()
    assert done["status"] == "SUCCEEDED", log
    assert done["attempts"] == 2
    assert done["result_npz"].endswith("result-2.npz")
    assert done["metrics"]["n_particles"] == parameters["n_particles"]
    results = Path(settings.MEDIA_ROOT) / "simulations" / str(project.pk) / str(simulation.pk)
    # The second attempt's files only (a result this big has a tile pyramid too).
    kept = sorted(p.name for p in results.iterdir())
    assert kept == ["picture-2.png", "result-2.npz", "tiles-2.bin"]
    assert not Simulation.objects.filter(status=Status.RUNNING).exists()


@pytest.mark.solo
def test_a_killed_run_is_running_again_within_90_s_behind_a_backlog(tmp_path: Path) -> None:
    """With the platform's own recovery settings (a heartbeat is stale after 60 s, the
    reaper runs every 15 s), a run whose worker was SIGKILLed runs again within 90 s even
    with 600 runs queued before it: housekeeping and rescued runs have their own queue,
    served by every worker (they used to wait behind the backlog: 280-346 s)."""
    defaults = {"SIMLAB_HEARTBEAT_STALE_S": "60", "SIMLAB_REAP_INTERVAL_S": "15"}
    assert settings.SIMLAB_HEARTBEAT_STALE_S == 60  # the shipped default, not a test value
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user)
    target = services.simulation_create(
        actor, project_id=project.pk, algorithm="dla", parameters={"n_particles": 300_000}, seed=5
    )
    first = WorkerProcess(tmp_path / "first.log", beat=False, **defaults)
    try:
        first.wait_ready()
        wait_for(
            lambda: Simulation.objects.filter(
                pk=target.pk, status=Status.RUNNING, progress__gt=0.02
            ).exists(),
            timeout=120,
        )
        # The backlog: enough work to keep one worker busy for minutes, in short runs. A
        # worker busy with a run finishes it before it takes the reaper's task, then again
        # before it takes the rescue: runs of seconds (300,000 particles) cost the rescue
        # tens of seconds on a slow machine. Many short ones keep the backlog from draining
        # within the 90 s on a fast one (which would hide whether the rescue jumped it).
        services.simulation_create_batch(
            actor,
            project_id=project.pk,
            specs=[
                services.SimulationSpec("dla", {"n_particles": 50_000}, seed=s) for s in range(600)
            ],
        )
    finally:
        first.kill()
    killed_at = time.monotonic()
    heartbeat = Simulation.objects.values_list("heartbeat_at", flat=True).get(pk=target.pk)

    with running_worker(tmp_path / "second.log", **defaults) as second:
        try:
            wait_for(
                lambda: Simulation.objects.filter(pk=target.pk, attempts=2).exists(),
                timeout=150,
                interval=0.5,
            )
        except AssertionError:
            raise AssertionError(f"never ran again\n{second.output()}") from None
        recovered_s = time.monotonic() - killed_at
        backlog_left = Simulation.objects.filter(project=project, status=Status.QUEUED).count()
    print(f"killed run running again after {recovered_s:.1f} s ({backlog_left} runs queued)")
    assert recovered_s < 90, recovered_s
    assert backlog_left > 100  # much of the backlog still waits: the rescue jumped it
    assert heartbeat is not None

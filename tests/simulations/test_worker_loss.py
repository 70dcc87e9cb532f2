"""A worker killed with SIGKILL mid-run: after a worker starts again, the simulation
finishes exactly once, with its attempts recorded, and nothing stays RUNNING."""

from __future__ import annotations

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
    assert sorted(p.name for p in results.iterdir()) == ["picture-2.png", "result-2.npz"]
    assert not Simulation.objects.filter(status=Status.RUNNING).exists()

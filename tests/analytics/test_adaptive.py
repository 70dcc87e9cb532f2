"""An adaptive study run by an agent: real DLA runs on a real worker, rounds until the
budget, each round's model trained by the worker and its suggestions run next."""

from __future__ import annotations

import pytest

from simlab.accounts.models import Role
from simlab.analytics import surrogate
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.simulations.models import Simulation
from simlab.tools import run_tool
from tests.factories import ProjectFactory, actor_for, member
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def test_spread_starts_with_the_corners_and_the_centre() -> None:
    grid = [[p, n] for p in (0.1, 0.5, 1.0) for n in (100, 1000, 10_000)]
    picks = surrogate.spread(grid, 5)
    corners = {(0.1, 100), (0.1, 10_000), (1.0, 100), (1.0, 10_000)}
    assert {tuple(grid[i]) for i in picks[:4]} == corners
    assert tuple(grid[picks[4]]) == (0.5, 1000)


def test_an_agent_runs_an_adaptive_study_to_its_budget(celery_worker: WorkerProcess) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    reports: list[tuple[float, float | None, str | None]] = []
    result = run_tool(
        actor,
        "run_adaptive_study",
        {
            "project_id": project.pk,
            "algorithm": "dla",
            "axes": {
                "sticking_probability": [0.3, 0.5, 0.7, 0.85, 1.0],
                "n_particles": [60, 100, 160, 250, 400],
            },
            "target": "radius_of_gyration",
            "name": "rg adaptive",
            "start": 9,
            "k": 4,
            "budget": 17,
            "timeout_s": 240,
        },
        progress=lambda done, total, message: reports.append((done, total, message)),
    ).data
    assert result["stopped"] == "budget", result
    assert result["runs"] == 17
    assert [r["runs"] for r in result["rounds"]] == [9, 13, 17]
    assert all(r["status"] == "READY" for r in result["rounds"]), result["rounds"]
    runs = Simulation.objects.filter(pk__in=result["simulation_ids"])
    points = {(r.parameters["sticking_probability"], r.parameters["n_particles"]) for r in runs}
    assert len(points) == 17  # every round ran new points
    assert [done for done, _, _ in reports] == [9, 13, 17]
    trained = AuditLog.objects.filter(action="surrogate.train", source="ai_tool").count()
    assert trained == 3

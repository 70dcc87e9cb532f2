"""Tools over a real worker: an agent runs a simulation, waits for it with progress, and
gets its picture."""

from __future__ import annotations

from typing import Any

import pytest

from simlab.core.actor import Source
from simlab.tools import call_tool, run_tool
from tests.factories import ProjectFactory, actor_for
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.timeout(180)]


def test_run_wait_and_see_the_picture(celery_worker: WorkerProcess, user: Any) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    created = call_tool(
        actor,
        "run_simulation",
        {"project_id": project.pk, "algorithm": "dla", "parameters": {"n_particles": 300_000}},
    )
    reports: list[tuple[float, float | None, str | None]] = []
    waited = run_tool(
        actor,
        "wait_for_simulation",
        {"simulation_id": created["id"], "timeout_s": 150},
        progress=lambda done, total, message: reports.append((done, total, message)),
    ).data
    assert waited["finished"] is True, celery_worker.output()
    assert waited["status"] == "SUCCEEDED"
    assert waited["metrics"]["n_particles"] == 300_000
    done = [report[0] for report in reports]
    assert done == sorted(done)  # progress never goes back
    assert done[-1] == 1.0
    assert reports[-1][2] == "SUCCEEDED"
    assert any(0 < value < 1 for value in done), reports  # seen while it ran
    picture = run_tool(actor, "get_result_picture", {"simulation_id": created["id"]})
    (image,) = picture.images
    assert image.mime_type == "image/png"
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert picture.data == {
        "simulation_id": created["id"],
        "algorithm": "dla",
        "bytes": len(image.data),
    }


def test_waiting_for_a_study_counts_its_finished_runs(
    celery_worker: WorkerProcess, user: Any
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    study = call_tool(
        actor,
        "run_parametric_study",
        {
            "project_id": project.pk,
            "algorithm": "eden",
            "axes": [{"parameter": "n_particles", "values": [1000, 2000, 4000]}],
            "seeds_per_point": 2,
        },
    )
    reports: list[tuple[float, float | None, str | None]] = []
    waited = run_tool(
        actor,
        "wait_for_parametric_study",
        {"sweep_id": study["sweep_id"], "timeout_s": 120},
        progress=lambda done, total, message: reports.append((done, total, message)),
    ).data
    assert waited["finished"] is True, celery_worker.output()
    assert waited["counts"] == {"SUCCEEDED": 6}
    assert waited["status"] == "SUCCEEDED"
    assert reports[-1] == (6, 6, "6 of 6 runs finished")
    assert [done for done, _, _ in reports] == sorted(done for done, _, _ in reports)

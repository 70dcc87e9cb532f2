"""Parametric studies of 200 simulations, over REST and through the AI tools, run by a
real worker process; both doors give the same table, and audit says which door."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.simulations.models import Simulation
from simlab.tools import call_tool
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import bearer, obtain_tokens
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STICKING = [round(float(p), 4) for p in np.linspace(0.05, 1.0, 200)]
BASE = {"n_particles": 40}


def _finished_results(client: httpx.Client, sweep_id: int) -> dict[str, Any] | None:
    body = client.get(f"/api/v1/sweeps/{sweep_id}/results/").json()
    return body if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None


def test_one_parameter_study_over_rest_and_ai_tools(
    asgi_server: ServedApp, celery_worker: WorkerProcess
) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    study = {
        "algorithm": "dla",
        "base_parameters": BASE,
        "axes": [{"parameter": "sticking_probability", "values": STICKING}],
        "seed": 2024,
    }
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        created = client.post(f"/api/v1/projects/{project.pk}/sweeps/", json=study)
        assert created.status_code == 201, created.text
        assert created.json()["total"] == 200

        via_tool = call_tool(
            actor_for(user, source=Source.AI_TOOL),
            "run_parametric_study",
            {"project_id": project.pk, **study},
        )
        assert via_tool["total"] == 200

        rest_table = wait_for(
            lambda: _finished_results(client, created.json()["id"]), timeout=300, interval=0.5
        )
        tool_table = wait_for(
            lambda: _finished_results(client, via_tool["sweep_id"]), timeout=300, interval=0.5
        )
    assert tool_table == call_tool(
        actor_for(user, source=Source.AI_TOOL),
        "get_sweep_results",
        {"sweep_id": via_tool["sweep_id"]},
    )
    assert rest_table["status"] == "SUCCEEDED", rest_table["counts"]
    assert tool_table["status"] == "SUCCEEDED", tool_table["counts"]
    assert rest_table["counts"] == {"SUCCEEDED": 200}
    assert len(rest_table["rows"]) == 200
    assert [r["point"]["sticking_probability"] for r in rest_table["rows"]] == STICKING
    # Same seeds, same parameters: the two doors give identical results.
    assert [r["metrics"] for r in rest_table["rows"]] == [r["metrics"] for r in tool_table["rows"]]
    assert "radius_of_gyration" in rest_table["metric_names"]

    sources = dict(
        AuditLog.objects.filter(action="sweep.create").values_list("object_id", "source")
    )
    assert sources == {str(created.json()["id"]): "api", str(via_tool["sweep_id"]): "ai_tool"}
    assert AuditLog.objects.filter(action="sweep.create").count() == 2  # one row per study


def test_two_parameter_grid_over_rest(asgi_server: ServedApp, celery_worker: WorkerProcess) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    sticking = [round(float(p), 3) for p in np.linspace(0.1, 1.0, 20)]
    sizes = list(range(20, 70, 5))
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        created = client.post(
            f"/api/v1/projects/{project.pk}/sweeps/",
            json={
                "algorithm": "dla",
                "axes": [
                    {"parameter": "sticking_probability", "values": sticking},
                    {"parameter": "n_particles", "values": sizes},
                ],
                "seed": 5,
            },
        )
        assert created.status_code == 201, created.text
        table = wait_for(
            lambda: _finished_results(client, created.json()["id"]), timeout=300, interval=0.5
        )
        detail = client.get(f"/api/v1/sweeps/{created.json()['id']}/").json()
        # The detail holds the first 100 children; all 200 come page by page.
        children: list[dict[str, Any]] = []
        url: str | None = detail["simulations_url"] + "?page_size=64"
        while url:
            page = client.get(url).json()
            children += page["results"]
            url = page["next"]
    assert table["status"] == "SUCCEEDED", table["counts"]
    assert len(table["rows"]) == 200
    points = {
        (r["point"]["sticking_probability"], r["point"]["n_particles"]) for r in table["rows"]
    }
    assert points == {(p, n) for p in sticking for n in sizes}
    for row in table["rows"]:
        assert row["metrics"]["n_particles"] == row["point"]["n_particles"]
    assert len(detail["simulations"]) == 100
    assert detail["simulations_truncated"] is True
    assert [c["id"] for c in children] == sorted({c["id"] for c in children})
    assert len(children) == 200
    assert all(child["metrics"] for child in children)
    assert Simulation.objects.filter(sweep_id=created.json()["id"], attempts=1).count() == 200

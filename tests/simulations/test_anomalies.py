"""Anomaly flags: real sweeps run by the real engine, a corrupted metric and a stalled
worker flagged, a clean 200-run sweep not; flags on REST, the live states and audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from django.utils import timezone

from simlab.audit.models import AuditLog
from simlab.simulations import execution, tasks
from simlab.simulations.events import Tracker, state_of
from simlab.simulations.models import ParameterSweep, Phase, RunFlag, Simulation, Status
from simlab.simulations.selectors import project_live_states
from simlab.simulations.services import (
    SimulationSpec,
    anomalies,
    simulation_create_batch,
    sweep_create,
)
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import assert_envelope, bearer, browser_login, obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def _run_sweep(points: list[float], seeds: int, n_particles: int) -> tuple[Any, Any, list[int]]:
    """A sweep over the sticking probability, every child run here by the real engine (the
    same `execute` a worker calls)."""
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    sweep = sweep_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        base_parameters={"n_particles": n_particles},
        axes=[{"parameter": "sticking_probability", "values": points}],
        seeds_per_point=seeds,
        seed=2026,
    )
    ids = list(Simulation.objects.filter(sweep=sweep).order_by("id").values_list("pk", flat=True))
    for pk in ids:
        assert execution.execute(pk) == Status.SUCCEEDED
    return user, project, ids


@pytest.mark.slow
def test_a_clean_200_run_sweep_raises_no_flag() -> None:
    points = [round(float(p), 4) for p in np.linspace(0.1, 1.0, 20)]
    _, _, ids = _run_sweep(points, seeds=10, n_particles=100)
    assert len(ids) == 200
    assert not RunFlag.objects.exists(), list(RunFlag.objects.values_list("reason", flat=True))
    assert not Simulation.objects.exclude(flags="").exists()


def test_a_corrupted_metric_is_flagged_shown_filtered_and_sent(
    asgi_server: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, project, ids = _run_sweep([0.3, 0.6, 1.0], seeds=8, n_particles=100)
    assert not RunFlag.objects.exists()
    victim = Simulation.objects.get(pk=ids[9])  # the second point's second seed
    before = state_of(victim)
    metrics = {**victim.metrics, "radius_of_gyration": victim.metrics["radius_of_gyration"] * 10}
    Simulation.objects.filter(pk=victim.pk).update(metrics=metrics)

    assert anomalies.score_finished(victim.pk) == [victim.pk]
    flag = RunFlag.objects.get()
    assert (flag.simulation_id, flag.kind) == (victim.pk, "replica")
    assert flag.score >= 8
    assert "radius_of_gyration" in flag.reason
    victim.refresh_from_db()
    assert victim.flag_list == ["replica"]
    audit = AuditLog.objects.get(action="simulation.flag")
    assert (audit.object_id, audit.source, audit.details["kind"]) == (
        str(victim.pk),
        "system",
        "replica",
    )
    # Scoring again (another replica finishing) raises nothing new.
    assert anomalies.score_finished(ids[10]) == []
    assert RunFlag.objects.count() == 1

    # The live feed: the flagged state says so, and a client that had it unflagged gets a
    # `flag` message; a worker's progress state (no flags) does not take it back.
    state = state_of(victim)
    assert state["flags"] == ["replica"]
    tracker = Tracker()
    tracker.seed(before)
    assert tracker.message(state) == {"type": "flag", **state}
    assert tracker.message(state) is None
    assert tracker.message({k: v for k, v in state.items() if k != "flags"}) is None
    since = timezone.now() - timedelta(hours=1)
    live = {
        s["simulation_id"]: s
        for s in project_live_states(actor_for(user), project.pk, finished_since=since)
    }
    assert live[victim.pk]["flags"] == ["replica"]
    assert live[ids[0]]["flags"] == []

    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    base = f"/api/v1/projects/{project.pk}/simulations/"
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        flagged = client.get(base, params={"flagged": "true"}).json()["results"]
        assert [s["id"] for s in flagged] == [victim.pk]
        assert flagged[0]["flags"][0]["kind"] == "replica"
        assert flagged[0]["flags"][0]["score"] == pytest.approx(flag.score)
        assert [
            s["id"] for s in client.get(base, params={"flag": "replica"}).json()["results"]
        ] == [victim.pk]
        assert client.get(base, params={"flag": "stalled"}).json()["results"] == []
        clean = client.get(base, params={"flagged": "false", "page_size": 100}).json()["results"]
        assert len(clean) == 23
        assert all(s["flags"] == [] for s in clean)
        assert_envelope(client.get(base, params={"flag": "bogus"}), 400, "validation_error")
        assert "flag" in client.get(base, params={"flag": "bogus"}).json()["error"]["details"]
        assert "flagged" in client.get(base, params={"flagged": "maybe"}).json()["error"]["details"]
        detail = client.get(f"/api/v1/simulations/{victim.pk}/").json()
        assert detail["flags"][0]["reason"] == flag.reason
    # The run page shows it; the web list filters on it.
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as browser:
        browser_login(browser, user.username, PASSWORD)
        run_page = browser.get(f"/runs/{victim.pk}/")
        assert run_page.status_code == 200
        assert "Anomaly flags" in run_page.text
        assert "radius_of_gyration" in run_page.text
        listed = browser.get(f"/projects/{project.pk}/runs/", params={"flag": "replica"}).text
        assert f"/runs/{victim.pk}/" in listed
        assert f"/runs/{ids[0]}/" not in listed

    # While a sweep runs, a finished run's point is scored against the spread pooled over
    # the latest runs (its replicas found by their parameters).
    ParameterSweep.objects.filter(pk=victim.sweep_id).update(status=Status.RUNNING)
    monkeypatch.setattr(anomalies, "MIN_POOLED", 10)
    other = Simulation.objects.get(pk=ids[20])  # the third point
    Simulation.objects.filter(pk=other.pk).update(metrics={**other.metrics, "max_radius": -1.0})
    assert anomalies.score_finished(ids[21]) == [other.pk]
    assert "max_radius" in RunFlag.objects.get(simulation_id=other.pk).reason


def _running(project: Any, user: Any, *, silent_s: float, n_particles: int = 100) -> int:
    (pk,) = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": n_particles})],
        queue=False,
    )
    now = timezone.now()
    Simulation.objects.filter(pk=pk).update(
        status=Status.RUNNING,
        attempts=1,
        started_at=now - timedelta(seconds=silent_s + 5),
        heartbeat_at=now,  # its worker is alive: the heartbeat thread beats on
        progress=0.4,
        progress_at=now - timedelta(seconds=silent_s),
    )
    return pk


def _history(project: Any, user: Any, *, n_particles: int, duration_s: float) -> None:
    """Finished runs of the algorithm in the organisation: the runtime model's data."""
    ids = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": n_particles}) for _ in range(4)],
        queue=False,
    )
    now = timezone.now()
    Simulation.objects.filter(pk__in=ids).update(
        status=Status.SUCCEEDED,
        started_at=now - timedelta(days=1, seconds=duration_s),
        finished_at=now - timedelta(days=1),
    )


def test_the_periodic_task_flags_a_stalled_worker_against_its_pace() -> None:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    stalled = _running(project, user, silent_s=600)
    moving = _running(project, user, silent_s=5)
    compiling = _running(project, user, silent_s=600)
    Simulation.objects.filter(pk=compiling).update(phase=Phase.COMPILING)
    # Runs of 10^6 particles take two hours here: ten minutes without progress is their pace.
    _history(project, user, n_particles=1_000_000, duration_s=7_200)
    _history(project, user, n_particles=2_000_000, duration_s=20_000)
    _history(project, user, n_particles=500_000, duration_s=2_500)
    slow = _running(project, user, silent_s=600, n_particles=1_000_000)

    counts = tasks.reap_simulations()
    assert counts["stalled"] == 1
    flag = RunFlag.objects.get()
    assert (flag.simulation_id, flag.kind) == (stalled, "stalled")
    assert flag.score >= 1
    assert "No progress for 6" in flag.reason
    assert Simulation.objects.get(pk=stalled).status == Status.RUNNING  # flagged, not killed
    assert Simulation.objects.filter(pk__in=[moving, slow, compiling], flags="").count() == 3
    # The next round does not flag it twice.
    assert tasks.reap_simulations()["stalled"] == 0
    assert AuditLog.objects.filter(action="simulation.flag").count() == 1

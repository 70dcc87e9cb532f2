"""ETAs: a real run records its progress curve; running and queued runs get an ETA from
the runtime model learnt on the organisation's finished runs, on REST (no query per run),
the client and CLI model, and the live states."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.client import SimLabClient
from simlab.simulations import eta as eta_service
from simlab.simulations import execution, selectors
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def _create(user: Any, project: Any, n: int, count: int = 1) -> list[int]:
    return simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": n}) for _ in range(count)],
        queue=False,
    )


def test_a_real_run_records_its_progress_curve(settings: SettingsWrapper) -> None:
    settings.SIMLAB_PROGRESS_INTERVAL_S = 0.01
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    (pk,) = _create(user, project, 100_000)
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)
    assert execution.execute(pk) == Status.SUCCEEDED
    run = Simulation.objects.get(pk=pk)
    marks = run.progress_marks
    assert len(marks) >= 3
    assert marks == sorted(marks)
    # One mark per 5 % of progress (the last may come sooner: at 100 %).
    assert len(marks) <= 21
    assert all(b[0] >= a[0] + 0.05 - 1e-9 for a, b in itertools.pairwise(marks[:-1]))
    assert marks[-1][0] > marks[-2][0]
    assert run.started_at is not None
    assert run.finished_at is not None
    duration = (run.finished_at - run.started_at).total_seconds()
    assert 0 < marks[-1][1] <= duration
    assert run.progress_at is not None


def _history(user: Any, project: Any) -> None:
    """Finished runs: 10^5 particles take 100 s, 2 x 10^5 take 280 s; progress p comes at
    0.8 p of the run."""
    now = timezone.now()
    for n, duration in ((100_000, 100.0), (200_000, 280.0), (50_000, 36.0)):
        ids = _create(user, project, n, count=3)
        Simulation.objects.filter(pk__in=ids).update(
            status=Status.SUCCEEDED,
            started_at=now - timedelta(hours=1, seconds=duration),
            finished_at=now - timedelta(hours=1),
            progress=1.0,
            progress_marks=[[p, 0.8 * p * duration] for p in (0.1, 0.25, 0.5, 0.75, 1.0)],
        )


def test_running_and_queued_runs_get_etas_on_rest_and_live_states(
    asgi_server: ServedApp,
) -> None:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    _history(user, project)
    now = timezone.now()
    (running,) = _create(user, project, 100_000)
    # A tenth of the way after 8 s: the straight line says 72 s more, the runs say 92.
    Simulation.objects.filter(pk=running).update(
        status=Status.RUNNING,
        attempts=1,
        started_at=now - timedelta(seconds=8),
        heartbeat_at=now,
        progress=0.1,
        progress_at=now,
    )
    first, second = _create(user, project, 200_000, count=2)
    for offset, pk in ((20, first), (10, second)):
        Simulation.objects.filter(pk=pk).update(
            status=Status.QUEUED, queued_at=now - timedelta(seconds=offset)
        )
    (created,) = _create(user, project, 100_000)  # not queued: no ETA

    etas = {s.pk: s.eta_s for s in selectors.with_etas(list(Simulation.objects.all()))}
    assert 80 < etas[running] < 105
    # One worker: the running run's rest, then 280 s per queued run ahead.
    assert etas[first] == pytest.approx(etas[running] + 280, rel=0.1)
    assert etas[second] == pytest.approx(etas[first] + 280, rel=0.1)
    assert etas[created] is None
    assert sum(eta is None for eta in etas.values()) == 10  # the finished ones and `created`

    live = selectors.simulation_live_state(actor_for(user), running)
    assert live["eta_s"] == pytest.approx(etas[running], abs=2)
    states = selectors.project_live_states(
        actor_for(user), project.pk, finished_since=now - timedelta(minutes=1)
    )
    assert {s["simulation_id"] for s in states if "eta_s" in s} == {running, first, second}

    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    # Seconds pass with the progress standing still: the ETA grows a little meanwhile.
    with SimLabClient(asgi_server.url, token=access) as client:
        shown = client.simulation(running)
        assert shown.eta_s == pytest.approx(etas[running], abs=20)
        assert shown.eta_text.startswith("ETA 1m ")
        listed = {s.id: s for s in client.simulations(project.pk)}
        assert listed[second].eta_s == pytest.approx(etas[second], abs=20)
        assert listed[created].eta_s is None
        assert client.simulation(created).eta_text == ""


def test_etas_of_a_page_take_the_same_queries_for_3_runs_as_for_30() -> None:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    _history(user, project)
    now = timezone.now()
    ids = _create(user, project, 100_000, count=30)
    Simulation.objects.filter(pk__in=ids[::2]).update(
        status=Status.RUNNING, started_at=now, progress=0.2, progress_at=now
    )
    Simulation.objects.filter(pk__in=ids[1::2]).update(status=Status.QUEUED, queued_at=now)
    selectors.with_etas(list(Simulation.objects.filter(pk__in=ids[:3])))  # models cached

    counts = []
    for page in (ids[:3], ids):
        runs = list(Simulation.objects.filter(pk__in=page))
        with CaptureQueriesContext(connection) as queries:
            selectors.with_etas(runs)
        assert all(run.eta_s is not None for run in runs)  # type: ignore[attr-defined]
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[0] <= 4


def test_queued_runs_past_the_scanned_queue_still_get_ordered_etas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    _history(user, project)
    now = timezone.now()
    ids = _create(user, project, 200_000, count=6)
    for offset, pk in enumerate(ids):
        Simulation.objects.filter(pk=pk).update(
            status=Status.QUEUED, queued_at=now - timedelta(seconds=60 - offset)
        )
    scanned = {
        s.pk: s.eta_s for s in selectors.with_etas(list(Simulation.objects.filter(pk__in=ids)))
    }
    # A scan of two: the other four are placed by one count and the mean run time.
    monkeypatch.setattr(eta_service, "QUEUE_SCAN", 2)
    counted = {
        s.pk: s.eta_s for s in selectors.with_etas(list(Simulation.objects.filter(pk__in=ids)))
    }
    assert [counted[pk] for pk in ids] == sorted(counted[pk] for pk in ids)
    for pk in ids:
        assert counted[pk] == pytest.approx(scanned[pk], rel=0.01)
    assert scanned[ids[-1]] == pytest.approx(6 * 280, rel=0.1)  # no worker busy: one slot

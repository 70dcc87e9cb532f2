"""Remote runs on a plain WES server (not SimLab): the scripted one of `simlab.wes.scripted`
on loopback, which ignores SimLab's list filters and pages its runs. A lost submit is
looked for page after page, within a bound; a run cancelled or deleted here is cancelled
there at once, best-effort, its outcome recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.projects import services as project_services
from simlab.registry.models import Service
from simlab.registry.scripted import Served
from simlab.simulations import remote, services
from simlab.simulations.models import RemoteRun, Simulation, Status
from tests.conftest import wait_for
from tests.factories import ProjectFactory, actor_for, member
from tests.registry.factories import wes_service
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"n_particles": 300}


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Runs the tasks (submits, cancels); no beat, so no poll sends a cancel for them."""
    worker = WorkerProcess(tmp_path_factory.mktemp("wes-worker") / "worker.log", beat=False)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def _site(wes: Served, name: str, role: Role = Role.MEMBER) -> tuple[Any, Service]:
    user = member(role)
    organization = user.memberships.get().organization
    ProjectFactory(organization=organization)
    return user, wes_service(wes.url, name, organization=organization)


def _create(user: Any, service: Service, *, queue: bool) -> Simulation:
    return services.simulation_create(
        actor_for(user),
        project_id=user.memberships.get().organization.projects.get().pk,
        algorithm="dla",
        parameters=SMALL,
        queue=queue,
        service_id=service.pk,
    )


def _record(wes: Served, name: str) -> dict[str, Any]:
    record: dict[str, Any] = httpx.get(f"{wes.url}/wes/{name}/record").json()
    return record


def _control(wes: Served, name: str, **told: Any) -> None:
    httpx.post(f"{wes.url}/wes/{name}/control", json=told).raise_for_status()


def _lost_behind(wes: Served, name: str, newer: int) -> tuple[Simulation, str]:
    """A run submitted, its answer then lost, and `newer` runs of others made since."""
    user, service = _site(wes, name)
    simulation = _create(user, service, queue=False)
    Simulation.objects.filter(pk=simulation.pk).update(status=Status.QUEUED)
    assert remote.submit(simulation.pk) == "submitted"
    first = RemoteRun.objects.get(pk=simulation.pk).remote_id
    RemoteRun.objects.filter(pk=simulation.pk).update(remote_id="", next_try_at=None)
    httpx.post(f"{wes.url}/wes/{name}/seed", json={"count": newer}).raise_for_status()
    return simulation, first


def _ours(wes: Served, name: str) -> list[str]:
    return [
        run["run_id"] for run in _record(wes, name)["runs"] if remote.TAG in run["request"]["tags"]
    ]


def test_a_lost_submit_is_found_past_the_first_page_of_runs(fake_wes: Served) -> None:
    simulation, first = _lost_behind(fake_wes, "paged", newer=250)
    assert remote.submit(simulation.pk) == "submitted"
    assert RemoteRun.objects.get(pk=simulation.pk).remote_id == first
    assert _ours(fake_wes, "paged") == [first]  # not sent twice
    assert _record(fake_wes, "paged")["list_calls"] == 3  # 100 + 100 + its page


def test_the_search_for_a_lost_submit_is_bounded(fake_wes: Served, settings: Any) -> None:
    settings.SIMLAB_REMOTE = {**settings.SIMLAB_REMOTE, "find_max_runs": 150}
    simulation, first = _lost_behind(fake_wes, "bounded", newer=250)
    assert remote.submit(simulation.pk) == "submitted"
    again = RemoteRun.objects.get(pk=simulation.pk).remote_id
    # Not among the 150 newest runs: given up on, and sent again.
    assert again != first
    assert sorted(_ours(fake_wes, "bounded")) == sorted([first, again])
    assert _record(fake_wes, "bounded")["list_calls"] == 2  # 100, then the 50 left


def _cancel_audits(simulation_id: int) -> list[dict[str, Any]]:
    rows = AuditLog.objects.filter(action="simulation.remote_cancel", object_id=str(simulation_id))
    return [row.details for row in rows.order_by("pk")]


def test_cancelling_here_cancels_there_at_once_and_a_refusal_is_recorded(
    fake_wes: Served, worker: WorkerProcess
) -> None:
    user, service = _site(fake_wes, "cancelling")
    simulation = _create(user, service, queue=True)
    remote_id = wait_for(
        lambda: RemoteRun.objects.filter(pk=simulation.pk).values_list("remote_id", flat=True)[0]
    )
    _control(fake_wes, "cancelling", cancel_status=503)
    services.simulation_cancel(actor_for(user), simulation.pk)
    (refused,) = wait_for(lambda: _cancel_audits(simulation.pk))
    assert refused["sent"] is False
    assert refused["error"].startswith("503: ")
    link = RemoteRun.objects.get(pk=simulation.pk)
    assert link.cancel_sent_at is None  # the poll sends it again while the run is here
    assert link.error.startswith("503: ")
    assert _record(fake_wes, "cancelling")["cancels"] == []
    # Running there: cancelled there as soon as it is cancelled here.
    _control(fake_wes, "cancelling", cancel_status=200, state="RUNNING")
    second = _create(user, service, queue=True)
    theirs = wait_for(
        lambda: RemoteRun.objects.filter(pk=second.pk).values_list("remote_id", flat=True)[0]
    )
    services.simulation_cancel(actor_for(user), second.pk)
    wait_for(lambda: theirs in _record(fake_wes, "cancelling")["cancels"])
    wait_for(lambda: RemoteRun.objects.get(pk=second.pk).cancel_sent_at)
    assert _cancel_audits(second.pk)[-1] == {
        "service_id": service.pk,
        "remote_id": theirs,
        "sent": True,
    }
    assert remote_id not in _record(fake_wes, "cancelling")["cancels"]


def test_deleting_here_cancels_there_and_never_waits_for_it(
    fake_wes: Served, worker: WorkerProcess
) -> None:
    user, service = _site(fake_wes, "deleting")
    actor = actor_for(user)
    made = [_create(user, service, queue=True) for _ in range(2)]
    theirs = [
        wait_for(
            lambda pk=simulation.pk: RemoteRun.objects.filter(pk=pk).values_list(
                "remote_id", flat=True
            )[0]
        )
        for simulation in made
    ]
    # The service refuses cancels: cancelled here, the cancel there fails.
    _control(fake_wes, "deleting", cancel_status=503)
    for simulation in made:
        services.simulation_cancel(actor, simulation.pk)
        wait_for(lambda pk=simulation.pk: _cancel_audits(pk))
    # Deleted while the service still refuses: deleted here at once, the failure recorded.
    services.simulation_delete(actor, made[0].pk)
    assert not Simulation.objects.filter(pk=made[0].pk).exists()
    failed = wait_for(lambda: _cancel_audits(made[0].pk)[1:])
    assert failed[0]["sent"] is False
    assert failed[0]["error"].startswith("503: ")
    assert failed[0]["remote_id"] == theirs[0]
    # Deleted once the service takes cancels again: cancelled there.
    _control(fake_wes, "deleting", cancel_status=200)
    services.simulation_delete(actor, made[1].pk)
    wait_for(lambda: theirs[1] in _record(fake_wes, "deleting")["cancels"])
    assert wait_for(lambda: _cancel_audits(made[1].pk)[1:])[0]["sent"] is True
    assert theirs[0] not in _record(fake_wes, "deleting")["cancels"]


def test_deleting_a_project_cancels_its_sweeps_runs_there(
    fake_wes: Served, worker: WorkerProcess
) -> None:
    user, service = _site(fake_wes, "project", Role.ADMIN)
    actor = actor_for(user)
    project_id = user.memberships.get().organization.projects.get().pk
    sweep = services.sweep_create(
        actor,
        project_id=project_id,
        algorithm="dla",
        base_parameters=SMALL,
        axes=[{"parameter": "sticking_probability", "values": [0.5, 1.0]}],
        service_id=service.pk,
    )
    ids = list(sweep.simulations.values_list("pk", flat=True))
    theirs = wait_for(
        lambda: (
            (sent := list(RemoteRun.objects.filter(pk__in=ids).exclude(remote_id="")))
            and len(sent) == 2
            and sorted(run.remote_id for run in sent)
        )
    )
    _control(fake_wes, "project", cancel_status=503)
    services.sweep_cancel(actor, sweep.pk)  # cancelled here; refused there
    wait_for(lambda: all(_cancel_audits(pk) for pk in ids))
    _control(fake_wes, "project", cancel_status=200)
    project_services.project_delete(actor, project_id)
    assert not Simulation.objects.filter(pk__in=ids).exists()
    wait_for(lambda: sorted(_record(fake_wes, "project")["cancels"]) == theirs)
    assert all(_cancel_audits(pk)[-1]["sent"] for pk in ids)

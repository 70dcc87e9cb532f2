"""Remote runs against a real SimLab: the test platform server is both sites (its WES at
/ga4gh/wes/v1 is "B", registered in its own registry with an API key of one of its
users), with real Celery workers running the runs and the beat mirroring them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, ValidationFailed
from simlab.registry.models import Service
from simlab.registry.services import service_test_connection
from simlab.simulations import remote, services
from simlab.simulations.models import FINISHED, ParameterSweep, RemoteRun, Simulation, Status
from simlab.wes.client import State
from tests.conftest import wait_for
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.registry.factories import registered
from tests.server import ServedApp
from tests.workers import WorkerProcess

SMALL = {"n_particles": 300}


@pytest.fixture(scope="module")
def remote_worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker with beat polling remote runs every half second."""
    log = tmp_path_factory.mktemp("remote-worker") / "worker.log"
    worker = WorkerProcess(log, concurrency=2, SIMLAB_REMOTE_POLL_S="0.5")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def _site(asgi_server: ServedApp) -> tuple[Any, Service]:
    """A member, and the platform itself registered (checked: up) in their organisation,
    reached with the member's own API key."""
    user = member(Role.ADMIN)
    organization = user.memberships.get().organization
    ProjectFactory(organization=organization)
    _, key = api_key_for(user, organization)
    service = registered(
        asgi_server.url, organization=organization, kind="simlab", credentials={"X-API-Key": key}
    )
    assert service_test_connection(Actor.system(), service.pk).ok
    return user, service


def _project_id(user: Any) -> int:
    return int(user.memberships.get().organization.projects.first().pk)


def _queued_remote(user: Any, service: Service) -> Simulation:
    """A small DLA for `service`, queued as the dispatcher leaves it for the run task (the
    tests that call `remote.submit` themselves, with no worker)."""
    simulation = services.simulation_create(
        actor_for(user),
        project_id=_project_id(user),
        algorithm="dla",
        parameters=SMALL,
        queue=False,
        service_id=service.pk,
    )
    Simulation.objects.filter(pk=simulation.pk).update(status=Status.QUEUED)
    simulation.refresh_from_db()
    return simulation


def _done(simulation_id: int) -> Simulation | None:
    simulation = Simulation.objects.get(pk=simulation_id)
    return simulation if simulation.is_finished else None


def test_a_run_sent_to_a_simlab_service_is_mirrored_and_its_results_fetched(
    asgi_server: ServedApp, remote_worker: WorkerProcess
) -> None:
    user, service = _site(asgi_server)
    _, key = api_key_for(user, user.memberships.get().organization)
    answer = httpx.post(
        f"{asgi_server.url}/api/v1/projects/{_project_id(user)}/simulations/",
        headers={"X-API-Key": key},
        json={"algorithm": "dla", "parameters": SMALL, "seed": 5, "service_id": service.pk},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    sent = answer.json()["id"]
    mirrored = wait_for(lambda: _done(sent), timeout=60)
    assert mirrored.status == Status.SUCCEEDED, mirrored.error_message
    # Settled just after the run is ended (never before: a crash between would strand it).
    link = wait_for(
        lambda: RemoteRun.objects.filter(simulation_id=sent, settled=True).first(), timeout=10
    )
    assert link.remote_state == State.COMPLETE
    ran = Simulation.objects.get(pk=int(link.remote_id))  # B's own run of it
    assert ran.pk != sent
    assert (ran.seed, ran.status) == (5, Status.SUCCEEDED)
    assert not RemoteRun.objects.filter(simulation_id=ran.pk).exists()
    assert mirrored.metrics == ran.metrics
    assert mirrored.metrics["n_particles"] == 300
    assert mirrored.progress == 1.0
    assert mirrored.started_at is not None
    assert mirrored.finished_at is not None
    with default_storage.open(mirrored.result_npz.name) as ours, ran.result_npz.open() as theirs:
        assert ours.read() == theirs.read()
    assert mirrored.result_png.name
    assert mirrored.result_npz.name != ran.result_npz.name
    audit = AuditLog.objects.filter(object_id=str(sent), object_type__icontains="simulation")
    actions = set(audit.values_list("action", flat=True))
    assert {"simulation.create", "simulation.remote_submit"} <= actions


def test_a_sweep_sent_to_a_service_runs_there_and_follows_its_children(
    asgi_server: ServedApp, remote_worker: WorkerProcess
) -> None:
    user, service = _site(asgi_server)
    sweep = services.sweep_create(
        actor_for(user),
        project_id=_project_id(user),
        algorithm="dla",
        base_parameters=SMALL,
        axes=[{"parameter": "sticking_probability", "values": [0.5, 1.0]}],
        service_id=service.pk,
    )
    ids = list(sweep.simulations.values_list("pk", flat=True))
    assert RemoteRun.objects.filter(simulation_id__in=ids, service=service).count() == 2
    wait_for(lambda: all(_done(pk) for pk in ids), timeout=60)
    # Refreshed right after each child's end (as for local runs), so a moment later.
    status = wait_for(
        lambda: (
            ParameterSweep.objects.filter(pk=sweep.pk, status__in=FINISHED)
            .values_list("status", flat=True)
            .first()
        ),
        timeout=10,
    )
    assert status == Status.SUCCEEDED
    assert set(Simulation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }


def test_cancelling_here_cancels_there(
    asgi_server: ServedApp, remote_worker: WorkerProcess
) -> None:
    user, service = _site(asgi_server)
    actor = actor_for(user)
    simulation = services.simulation_create(
        actor,
        project_id=_project_id(user),
        algorithm="dla",
        parameters={"n_particles": 200_000},
        service_id=service.pk,
    )
    link = wait_for(
        lambda: RemoteRun.objects.filter(simulation_id=simulation.pk).exclude(remote_id="").first()
    )
    services.simulation_cancel(actor, simulation.pk)
    ended = wait_for(lambda: _done(simulation.pk), timeout=60)
    assert ended.status == Status.CANCELLED
    theirs = wait_for(lambda: _done(int(link.remote_id)), timeout=60)
    assert theirs.status == Status.CANCELLED
    wait_for(lambda: RemoteRun.objects.get(simulation_id=simulation.pk).settled, timeout=30)


def test_choosing_a_service_names_the_field(asgi_server: ServedApp) -> None:
    user, service = _site(asgi_server)
    actor, project_id = actor_for(user), _project_id(user)
    create = {"project_id": project_id, "algorithm": "dla", "parameters": SMALL}
    with pytest.raises(ValidationFailed) as refused:
        services.simulation_create(actor, **create, service_id=10**9)
    assert "service_id" in refused.value.details
    plain = registered(f"{asgi_server.url}/health", kind="http")
    with pytest.raises(ValidationFailed) as refused:
        services.simulation_create(actor, **create, service_id=plain.pk)
    assert "kind http" in refused.value.details["service_id"][0]
    # Registered but never seen up (unknown), then behind an open breaker: 409.
    organization = user.memberships.get().organization
    dead = registered("http://127.0.0.1:9", organization=organization, kind="simlab")
    with pytest.raises(Conflict) as busy:
        services.sweep_create(
            actor,
            project_id=project_id,
            algorithm="dla",
            axes=[{"parameter": "n_particles", "values": [100, 200]}],
            service_id=dead.pk,
        )
    assert "service_id" in busy.value.details
    service.state.breaker_until = timezone.now() + timedelta(minutes=5)
    service.state.save(update_fields=["breaker_until"])
    with pytest.raises(Conflict, match="breaker"):
        services.simulation_create(actor, **create, service_id=service.pk)
    # Over REST: a 400 and a 409 in the envelope, never a 500.
    _, key = api_key_for(user, organization)
    url = f"{asgi_server.url}/api/v1/projects/{project_id}/simulations/"
    body = {"algorithm": "dla", "parameters": SMALL}
    for service_id, code in (("x", 400), (10**9, 400), (service.pk, 409)):
        answer = httpx.post(
            url, headers={"X-API-Key": key}, json={**body, "service_id": service_id}
        )
        assert answer.status_code == code, answer.text
        assert "service_id" in answer.json()["error"]["details"]
    assert not Simulation.objects.filter(project_id=project_id).exists()


def test_a_submit_whose_answer_was_lost_is_found_not_sent_twice(
    asgi_server: ServedApp, settings: Any
) -> None:
    """No worker here: the test calls `submit` as the run task does."""
    user, service = _site(asgi_server)
    simulation = _queued_remote(user, service)
    assert remote.submit(simulation.pk) == "submitted"
    first = RemoteRun.objects.get(pk=simulation.pk).remote_id
    # The process "died" after B accepted and before the answer was recorded.
    RemoteRun.objects.filter(pk=simulation.pk).update(remote_id="", next_try_at=None)
    assert remote.submit(simulation.pk) == "submitted"
    assert RemoteRun.objects.get(pk=simulation.pk).remote_id == first
    assert remote.submit(simulation.pk) is None  # sent: nothing more to do
    tag = remote.run_tag(RemoteRun.objects.get(pk=simulation.pk))
    assert Simulation.objects.filter(wes__tags__simlab_run=tag).count() == 1


def test_an_unreachable_service_fails_the_run_only_after_the_deadline(
    asgi_server: ServedApp, settings: Any, tmp_path: Path
) -> None:
    user, service = _site(asgi_server)
    simulation = _queued_remote(user, service)
    assert remote.submit(simulation.pk) == "submitted"
    # B goes away (nothing listens there now). The module's worker may run the beat's
    # round too: whichever round polls, the run is counted unreachable once.
    Service.objects.filter(pk=service.pk).update(url="http://127.0.0.1:9")
    wait_for(
        lambda: (
            remote.sync().get("unreachable")
            or RemoteRun.objects.get(pk=simulation.pk).poll_failures
        ),
        timeout=30,
    )
    link = RemoteRun.objects.get(pk=simulation.pk)
    assert link.poll_failures == 1
    assert link.error
    assert not link.settled
    assert link.next_try_at is not None  # backing off
    assert link.next_try_at > timezone.now()
    assert remote.sync() == {}  # not polled again before then
    assert Simulation.objects.get(pk=simulation.pk).status == Status.QUEUED
    settings.SIMLAB_REMOTE = {**settings.SIMLAB_REMOTE, "lost_after_s": 60}
    # Time passes: the back-off is over, and so is the deadline (the worker's beat has
    # its own setting, an hour: only this process's round may call it lost).
    RemoteRun.objects.filter(pk=simulation.pk).update(
        last_contact_at=timezone.now() - timedelta(seconds=61), next_try_at=None
    )
    wait_for(
        lambda: (
            remote.sync().get("lost")
            or Simulation.objects.get(pk=simulation.pk).status == Status.FAILED
        ),
        timeout=30,
    )
    failed = Simulation.objects.get(pk=simulation.pk)
    assert failed.status == Status.FAILED
    assert failed.error_message.startswith("Remote service unreachable since ")
    assert RemoteRun.objects.get(pk=simulation.pk).settled


def test_a_run_the_service_refuses_fails_with_its_reason(asgi_server: ServedApp) -> None:
    """B answers 400 (its user has no project to run in): no retry, the reason kept."""
    user, _ = _site(asgi_server)
    homeless = member(Role.MEMBER)
    _, key = api_key_for(homeless, homeless.memberships.get().organization)
    refusing = registered(
        asgi_server.url,
        organization=user.memberships.get().organization,
        kind="simlab",
        credentials={"X-API-Key": key},
    )
    assert service_test_connection(Actor.system(), refusing.pk).ok
    simulation = _queued_remote(user, refusing)
    assert remote.submit(simulation.pk) == "failed"
    failed = Simulation.objects.get(pk=simulation.pk)
    assert failed.status == Status.FAILED
    assert failed.error_message.startswith(f"Refused by {refusing.name}: ")
    assert "project" in failed.error_message
    assert RemoteRun.objects.get(pk=simulation.pk).settled
    assert remote.submit(simulation.pk) is None


def test_a_run_waits_queued_while_its_services_breaker_is_open(asgi_server: ServedApp) -> None:
    user, service = _site(asgi_server)
    simulation = _queued_remote(user, service)
    state = service.state
    state.breaker_until = timezone.now() + timedelta(minutes=5)
    state.save(update_fields=["breaker_until"])
    assert remote.submit(simulation.pk) == "retry"
    link = RemoteRun.objects.get(pk=simulation.pk)
    assert link.remote_id == ""
    assert link.submit_started_at is None  # nothing was sent
    assert "not usable" in link.error
    assert Simulation.objects.get(pk=simulation.pk).status == Status.QUEUED
    assert remote.submit(simulation.pk) is None  # backing off
    state.breaker_until = None
    state.save(update_fields=["breaker_until"])
    RemoteRun.objects.filter(pk=simulation.pk).update(next_try_at=None)  # the back-off passed
    assert remote.sync().get("submitted") == 1
    assert RemoteRun.objects.get(pk=simulation.pk).remote_id

"""The admin of remote runs: the list as the mirror keeps it, read-only pages, and the
actions that go through the services ("sync now" polling the service for real, cancel)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.errors import NotFound, PermissionDenied, ValidationFailed
from simlab.registry.scripted import free_port
from simlab.simulations import remote, services
from simlab.simulations.models import RemoteRun, Simulation, Status
from simlab.simulations.services.remote import remote_attach
from tests.factories import ProjectFactory, actor_for, member
from tests.registry.factories import registered

pytestmark = pytest.mark.django_db
ADMIN = "/admin/simulations/remoterun/"


def sent_run(user: Any, *, remote_id: str = "run-1") -> RemoteRun:
    """A simulation of `user`'s project sent to a service that has since gone away
    (nothing listens at its address), its remote run started there."""
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    service = registered(
        f"http://127.0.0.1:{free_port()}", organization=organization, kind="simlab"
    )
    simulation = services.simulation_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        parameters={"n_particles": 300},
        queue=False,
    )
    remote_attach([simulation.pk], service)
    Simulation.objects.filter(pk=simulation.pk).update(status=Status.QUEUED)
    RemoteRun.objects.filter(pk=simulation.pk).update(remote_id=remote_id, remote_state="RUNNING")
    return RemoteRun.objects.select_related("service").get(pk=simulation.pk)


def test_the_list_shows_each_run_with_its_simulation_service_and_state(
    admin_browser: Client,
) -> None:
    run = sent_run(member(Role.ADMIN), remote_id="wes-run-42")
    RemoteRun.objects.filter(pk=run.pk).update(error="connection refused (earlier)")
    page = admin_browser.get(ADMIN).content.decode()
    assert f'<a href="/admin/simulations/simulation/{run.pk}/change/">#{run.pk}</a></td>' in page
    assert "wes-run-42" in page
    assert "RUNNING" in page
    assert run.service is not None
    assert run.service.name in page
    assert "connection refused (earlier)" in page
    assert '<td class="field-simulation_status">QUEUED</td>' in page
    found = admin_browser.get(ADMIN, {"q": "wes-run-42"}).content.decode()
    assert "wes-run-42" in found


def test_pages_are_read_only(admin_browser: Client) -> None:
    run = sent_run(member(Role.ADMIN))
    change = f"{ADMIN}{run.pk}/change/"
    page = admin_browser.get(change)
    assert page.status_code == 200
    assert 'name="remote_id"' not in page.content.decode()  # shown, not editable
    assert admin_browser.post(change, {"remote_id": "forged"}).status_code == 403
    assert admin_browser.get(f"{ADMIN}add/").status_code == 403
    assert admin_browser.post(f"{ADMIN}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RemoteRun.objects.get(pk=run.pk).remote_id == "run-1"


def test_sync_now_polls_the_service_and_records_what_it_found(admin_browser: Client) -> None:
    run = sent_run(member(Role.ADMIN))
    synced = admin_browser.post(
        ADMIN, {"action": "sync_now", "_selected_action": [run.pk]}, follow=True
    )
    assert "Synced: unreachable 1." in synced.content.decode()
    run.refresh_from_db()
    assert run.poll_failures == 1
    assert run.last_polled_at is not None
    assert run.error  # what the connection said
    assert not run.settled
    audit = AuditLog.objects.get(action="simulation.remote_sync")
    assert audit.source == "admin"
    assert audit.object_id == str(run.pk)
    # Backing off now: a second "sync now" does not hammer the service.
    again = admin_browser.post(
        ADMIN, {"action": "sync_now", "_selected_action": [run.pk]}, follow=True
    )
    assert "Nothing done" in again.content.decode()
    assert RemoteRun.objects.get(pk=run.pk).poll_failures == 1


def test_cancel_goes_through_the_simulation_service(admin_browser: Client) -> None:
    run = sent_run(member(Role.ADMIN))
    done = admin_browser.post(
        ADMIN, {"action": "cancel", "_selected_action": [run.pk]}, follow=True
    )
    assert "Cancelled 1 simulation(s)." in done.content.decode()
    assert Simulation.objects.get(pk=run.pk).status == Status.CANCELLED
    assert AuditLog.objects.get(action="simulation.cancel").source == "admin"


def test_sync_now_keeps_to_the_actors_organisation() -> None:
    owner = member(Role.ADMIN)
    run = sent_run(owner)
    stranger = member(Role.ADMIN)
    with pytest.raises(NotFound):
        remote.remote_sync_now(actor_for(stranger), [run.pk])
    viewer = member(Role.VIEWER, owner.memberships.get().organization)
    with pytest.raises(PermissionDenied):
        remote.remote_sync_now(actor_for(viewer), [run.pk])
    local = services.simulation_create(
        actor_for(owner),
        project_id=run.simulation.project_id,
        algorithm="dla",
        parameters={"n_particles": 300},
        queue=False,
    )
    with pytest.raises(ValidationFailed):
        remote.remote_sync_now(actor_for(owner), [local.pk])
    assert RemoteRun.objects.get(pk=run.pk).last_polled_at is None
    assert not AuditLog.objects.filter(action="simulation.remote_sync").exists()

"""Identity edits in the Django admin go through the account services: their rules and
one audit row each (real admin forms posted with Django's test client)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import Client

from simlab.accounts.models import ApiKey, Membership, Organization, Role
from simlab.audit.models import AuditLog
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import simulation_create
from simlab.usage.models import Kind, UsageEvent
from simlab.usage.services import usage_record
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    actor_for,
    api_key_for,
    member,
)

pytestmark = pytest.mark.django_db


def _audit(action: str) -> AuditLog:
    return AuditLog.objects.get(action=action)


def _messages(response: object) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]  # type: ignore[attr-defined]


def test_an_organisation_is_created_renamed_and_deleted_through_the_services(
    admin_browser: Client,
) -> None:
    added = admin_browser.post("/admin/accounts/organization/add/", {"name": "  Lab X  "})
    assert added.status_code == 302, added.content.decode()[:2000]
    organization = Organization.objects.get(name="Lab X")  # the service's normalisation
    assert _audit("organization.create").source == "admin"
    # The admin who made it is its first owner (the service's rule).
    assert Membership.objects.get(organization=organization).role == Role.OWNER

    renamed = admin_browser.post(
        f"/admin/accounts/organization/{organization.pk}/change/", {"name": "Lab Y"}
    )
    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    assert _audit("organization.update").details == {"name": "Lab Y"}

    blank = admin_browser.post(
        f"/admin/accounts/organization/{organization.pk}/change/", {"name": "   "}
    )
    assert blank.status_code == 200  # the form again
    organization.refresh_from_db()
    assert organization.name == "Lab Y"

    # Its usage facts (whose admin is read-only) go with it rather than blocking it.
    with transaction.atomic():
        usage_record(organization_id=organization.pk, key="x", kind=Kind.SIMULATIONS, quantity=1)
    deleted = admin_browser.post(
        f"/admin/accounts/organization/{organization.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert not Organization.objects.filter(pk=organization.pk).exists()
    assert not UsageEvent.objects.filter(organization_id=organization.pk).exists()
    assert _audit("organization.delete").details["name"] == "Lab Y"


def test_an_organisation_with_running_work_is_not_deleted(admin_browser: Client) -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    project = ProjectFactory(organization=organization)
    simulation = simulation_create(
        actor_for(owner), project_id=project.pk, algorithm="random_walk", queue=False
    )
    Simulation.objects.filter(pk=simulation.pk).update(status=Status.RUNNING)

    page = admin_browser.post(
        f"/admin/accounts/organization/{organization.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert Organization.objects.filter(pk=organization.pk).exists()
    shown = _messages(page)
    assert any("Cancel the queued or running simulations first" in m for m in shown), shown
    assert not any("successfully" in m for m in shown), shown
    assert not AuditLog.objects.filter(action="organization.delete").exists()


def test_memberships_are_set_and_removed_through_the_services(admin_browser: Client) -> None:
    organization = OrganizationFactory()
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=Role.OWNER)
    newcomer = UserFactory()

    added = admin_browser.post(
        "/admin/accounts/membership/add/",
        {"user": newcomer.pk, "organization": organization.pk, "role": Role.MEMBER},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    membership = Membership.objects.get(user=newcomer, organization=organization)
    assert _audit("membership.set").details == {"user": newcomer.username, "role": "member"}

    promoted = admin_browser.post(
        f"/admin/accounts/membership/{membership.pk}/change/", {"role": Role.ADMIN}
    )
    assert promoted.status_code == 302, promoted.content.decode()[:2000]
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN

    # The last owner stays an owner: a form error, nothing written.
    last_owner = Membership.objects.get(user=owner, organization=organization)
    demoted = admin_browser.post(
        f"/admin/accounts/membership/{last_owner.pk}/change/", {"role": Role.MEMBER}
    )
    assert demoted.status_code == 200
    assert "The last owner stays an owner." in demoted.content.decode()
    last_owner.refresh_from_db()
    assert last_owner.role == Role.OWNER
    refused = admin_browser.post(
        f"/admin/accounts/membership/{last_owner.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert Membership.objects.filter(pk=last_owner.pk).exists()
    assert any("needs an owner" in m for m in _messages(refused))

    removed = admin_browser.post(
        f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}
    )
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert _audit("membership.remove").details == {"user": newcomer.username, "role": "admin"}
    assert AuditLog.objects.filter(source="admin").count() == 3  # set, set, remove


def test_api_keys_are_revoked_and_deleted_through_the_services_and_never_edited(
    admin_browser: Client,
) -> None:
    user = member()
    key, _ = api_key_for(user, user.memberships.get().organization)
    other, _ = api_key_for(user, user.memberships.get().organization)

    revoked = admin_browser.post(
        "/admin/accounts/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert revoked.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert _audit("api_key.revoke").source == "admin"

    edit = admin_browser.post(f"/admin/accounts/apikey/{key.pk}/change/", {"name": "x"})
    assert edit.status_code == 403
    key.refresh_from_db()
    assert key.name == "test key"

    deleted = admin_browser.post(
        "/admin/accounts/apikey/",
        {"action": "delete_selected", "_selected_action": [key.pk, other.pk], "post": "yes"},
    )
    assert deleted.status_code == 302
    assert not ApiKey.objects.filter(pk__in=[key.pk, other.pk]).exists()
    assert AuditLog.objects.filter(action="api_key.delete", source="admin").count() == 2


def test_simulations_are_read_only_and_deleted_through_the_service(
    admin_browser: Client,
) -> None:
    owner = member(Role.OWNER)
    project = ProjectFactory(organization=owner.memberships.get().organization)
    idle, running = (
        simulation_create(
            actor_for(owner), project_id=project.pk, algorithm="random_walk", queue=False
        )
        for _ in range(2)
    )
    Simulation.objects.filter(pk=running.pk).update(status=Status.RUNNING)

    edit = admin_browser.post(f"/admin/simulations/simulation/{idle.pk}/change/", {})
    assert edit.status_code == 403

    page = admin_browser.post(
        "/admin/simulations/simulation/",
        {"action": "delete_selected", "_selected_action": [idle.pk, running.pk], "post": "yes"},
        follow=True,
    )
    assert list(Simulation.objects.values_list("pk", flat=True)) == [running.pk]
    shown = _messages(page)
    assert "Deleted 1 of 2." in shown, shown
    assert not any("Successfully" in m for m in shown), shown
    assert AuditLog.objects.filter(action="simulation.delete", source="admin").count() == 1


def test_the_admin_pages_render(admin_browser: Client) -> None:
    user = member(Role.OWNER)
    organization = user.memberships.get().organization
    key, _ = api_key_for(user, organization)
    membership = user.memberships.get()
    for path in (
        "/admin/accounts/organization/add/",
        f"/admin/accounts/organization/{organization.pk}/change/",
        "/admin/accounts/membership/add/",
        f"/admin/accounts/membership/{membership.pk}/change/",
        f"/admin/accounts/apikey/{key.pk}/change/",
        "/admin/accounts/apikey/",
    ):
        page = admin_browser.get(path)
        assert page.status_code == 200, path
    assert (
        user.username
        in admin_browser.get(
            f"/admin/accounts/organization/{organization.pk}/change/"
        ).content.decode()
    )

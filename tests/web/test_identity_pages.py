"""Identity pages over a real server: API keys (shown once, used, revoked, refused), an
organisation's members and projects, and the audit log of it all."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from simlab.accounts.models import ApiKey, Invitation, Membership, Role
from simlab.audit.models import AuditLog
from simlab.projects.models import Project
from tests.factories import PASSWORD, ProjectFactory, UserFactory, member
from tests.http import browser_session, invalid_field, post_form
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_key_is_shown_once_works_and_once_revoked_is_refused(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        page = post_form(
            client,
            "/api-keys/",
            {"name": "laptop", "organization": organization.pk, "scopes": ["read"]},
            form_on="/api-keys/",
        )
        assert page.status_code == 200
        raw = re.search(r'id="new-key" readonly value="([^"]+)"', page.text)
        assert raw, page.text[:2000]
        key = ApiKey.objects.get(user=user)
        assert key.prefix in raw.group(1)
        assert key.scopes == ["read"]
        listing = client.get("/api-keys/")
        assert raw.group(1) not in listing.text  # never shown again
        assert key.prefix in listing.text

        used = httpx.get(f"{asgi_server.url}/api/v1/projects/", headers={"X-API-Key": raw.group(1)})
        assert used.status_code == 200

        revoked = post_form(client, f"/api-keys/{key.pk}/revoke/", {}, form_on="/api-keys/")
        assert "The key is revoked" in revoked.text
    refused = httpx.get(f"{asgi_server.url}/api/v1/projects/", headers={"X-API-Key": raw.group(1)})
    assert refused.status_code == 401
    actions = set(AuditLog.objects.filter(source="web").values_list("action", flat=True))
    assert {"api_key.create", "api_key.revoke"} <= actions


def test_bad_key_input_is_a_field_error(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        page = post_form(
            client,
            "/api-keys/",
            {"name": "old", "organization": organization.pk, "scopes": ["read"],
             "expires_on": "2001-01-01"},
            form_on="/api-keys/",
        )  # fmt: skip
        assert page.status_code == 400
        block = re.search(
            r'<div class="field invalid">\s*<label for="id_expires_on">.*?</div>', page.text, re.S
        )
        assert block
        assert "Must be in the future." in block.group(0)
        missing = post_form(
            client, "/api-keys/", {"organization": organization.pk}, form_on="/api-keys/"
        )
        assert missing.status_code == 400
    assert not ApiKey.objects.exists()


def test_an_admin_adds_a_viewer_who_sees_but_cannot_create(asgi_server: ServedApp) -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    project = ProjectFactory(organization=organization)
    newcomer = UserFactory(email="new@example.org")
    org_page = f"/organizations/{organization.pk}/"
    with browser_session(asgi_server.url, admin.username, PASSWORD) as client:
        added = post_form(
            client,
            f"/organizations/{organization.pk}/members/",
            {"who": "new@example.org", "role": "viewer"},
            form_on=org_page,
        )
        assert f"{newcomer.username} is now a member." in added.text
        unknown = post_form(
            client,
            f"/organizations/{organization.pk}/members/",
            {"who": "nobody-here", "role": "viewer"},
            form_on=org_page,
        )
        assert unknown.status_code == 400
        block = re.search(
            r'<div class="field invalid">\s*<label for="id_who">.*?</div>', unknown.text, re.S
        )
        assert block  # beside the field
        assert "No SimLab user has that username or e-mail." in block.group(0)
        taken = post_form(
            client,
            f"/organizations/{organization.pk}/projects/",
            {"name": project.name},
            form_on=org_page,
        )
        assert taken.status_code == 400
        block = re.search(
            r'<div class="field invalid">\s*<label for="id_name">.*?</div>', taken.text, re.S
        )
        assert block
        assert "Already exists." in block.group(0)
    assert Membership.objects.get(user=newcomer, organization=organization).role == Role.VIEWER

    with browser_session(asgi_server.url, newcomer.username, PASSWORD) as client:
        assert client.get(f"/projects/{project.pk}/runs/").status_code == 200
        page = client.get(org_page)
        assert "Add a member" not in page.text  # a viewer manages nothing
        assert "New project" not in page.text
        refused = post_form(
            client, f"/organizations/{organization.pk}/projects/", {"name": "X"}, form_on=org_page
        )
        assert refused.status_code == 403  # the 403 page, saying why
        assert "needs 'member' or higher" in html.unescape(refused.text)
    assert not Project.objects.filter(name="X").exists()


def test_members_change_role_and_the_last_owner_stays(asgi_server: ServedApp) -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    colleague = member(Role.MEMBER, organization)
    org_page = f"/organizations/{organization.pk}/"
    with browser_session(asgi_server.url, owner.username, PASSWORD) as client:
        post_form(
            client,
            f"/organizations/{organization.pk}/members/{colleague.pk}/",
            {"role": "admin"},
            form_on=org_page,
        )
        assert Membership.objects.get(user=colleague).role == Role.ADMIN
        last = post_form(
            client,
            f"/organizations/{organization.pk}/members/{owner.pk}/",
            {"role": "member"},
            form_on=org_page,
        )
        assert "make someone else owner first" in last.text
        assert Membership.objects.get(user=owner).role == Role.OWNER
        post_form(
            client,
            f"/organizations/{organization.pk}/members/{colleague.pk}/",
            {"role": "admin", "remove": "1"},
            form_on=org_page,
        )
        assert not Membership.objects.filter(user=colleague).exists()
        created = post_form(
            client,
            f"/organizations/{organization.pk}/projects/",
            {"name": "Fresh", "description": "d"},
            form_on=org_page,
        )
        project = Project.objects.get(name="Fresh")
        assert created.url.path == f"/projects/{project.pk}/"

        log = client.get("/audit/?source=web")
        for action in ("membership.set", "membership.remove", "project.create"):
            assert action in log.text
        only = client.get("/audit/?action=project.")
        assert "membership.set" not in only.text
        assert "project.create" in only.text


def test_an_admin_invites_then_withdraws_on_the_organisation_page(
    asgi_server: ServedApp,
) -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    org_page = f"/organizations/{organization.pk}/"
    with browser_session(asgi_server.url, admin.username, PASSWORD) as client:
        sent = post_form(
            client,
            f"/organizations/{organization.pk}/invitations/",
            {"invitation-email": "ana@example.org", "invitation-role": "viewer"},
            form_on=org_page,
        )
        assert "Invitation sent to ana@example.org" in sent.text
        invitation = Invitation.objects.get(email="ana@example.org")
        assert (
            'Withdraw<span class="visually-hidden"> the invitation of ana@example.org' in sent.text
        )
        withdrawn = post_form(
            client,
            f"/organizations/{organization.pk}/invitations/{invitation.pk}/withdraw/",
            {},
            form_on=org_page,
        )
        assert "Invitation withdrawn." in withdrawn.text
        assert "ana@example.org" not in withdrawn.text
        assert not Invitation.objects.exists()
        again = post_form(
            client,
            f"/organizations/{organization.pk}/invitations/{invitation.pk}/withdraw/",
            {},
            form_on=org_page,
        )
        assert again.status_code == 404
    assert AuditLog.objects.filter(action="invitation.withdraw", source="web").count() == 1


def test_pages_of_another_organisation_are_404(asgi_server: ServedApp) -> None:
    user = member(Role.OWNER)
    stranger = member(Role.OWNER)
    theirs = stranger.memberships.get().organization
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        assert client.get(f"/organizations/{theirs.pk}/").status_code == 404
        invite = post_form(
            client,
            f"/organizations/{theirs.pk}/members/",
            {"who": user.username, "role": "owner"},
            form_on="/api-keys/",
        )
        assert invite.status_code == 404
    assert not Membership.objects.filter(user=user, organization=theirs).exists()


def test_projects_are_renamed_archived_and_restored_on_the_organisation_page(
    asgi_server: ServedApp,
) -> None:
    from simlab.simulations.models import Simulation

    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    project = ProjectFactory(organization=organization, name="Old name")
    ProjectFactory(organization=organization, name="Taken")
    org_page = f"/organizations/{organization.pk}/"
    change = f"/organizations/{organization.pk}/projects/{project.pk}/"
    with browser_session(asgi_server.url, admin.username, PASSWORD) as client:
        field = f"project-{project.pk}"
        for name, error in [("Taken", "Already exists"), ("", "required")]:
            data = {f"{field}-name": name, f"{field}-description": ""}
            refused = post_form(client, change, data, form_on=org_page)
            assert refused.status_code == 400
            # Beside that project's name field: not a message, never a 500.
            assert error in invalid_field(refused, f"{field}-name")
        data = {f"{field}-name": "New name", f"{field}-description": "d"}
        post_form(client, change, data, form_on=org_page)
        project.refresh_from_db()
        assert (project.name, project.description) == ("New name", "d")

        post_form(client, change, {"archive": "1"}, form_on=org_page)
        project.refresh_from_db()
        assert project.archived_at is not None
        refused = post_form(
            client,
            f"/projects/{project.pk}/runs/new/",
            {"algorithm": "eden"},
            form_on=f"/projects/{project.pk}/runs/new/",
        )
        assert refused.status_code == 400
        assert "is archived" in refused.text
        assert not Simulation.objects.filter(project=project).exists()
        post_form(client, change, {"restore": "1"}, form_on=org_page)
        project.refresh_from_db()
        assert project.archived_at is None
    actions = list(
        AuditLog.objects.filter(source="web", action__startswith="project.").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["project.archive", "project.restore", "project.update"]

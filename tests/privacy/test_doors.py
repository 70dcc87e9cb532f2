"""Every door to data rights reaches the same services: REST over real HTTP, the
management commands behind `simlab manage`, and the admin actions."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client

from simlab.accounts.models import Organization, Role, User
from simlab.audit.models import AuditLog
from tests.factories import PASSWORD, MembershipFactory, UserFactory, api_key_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp

ALL = ["read", "write", "compute", "admin"]


@pytest.mark.django_db(transaction=True)
def test_rest_export_and_erase(asgi_server: ServedApp) -> None:
    owner = member(Role.OWNER)
    organization = Organization.objects.get(memberships__user=owner)
    colleague = member(Role.MEMBER, organization)
    _, owner_key = api_key_for(owner, organization, scopes=ALL)
    _, colleague_key = api_key_for(colleague, organization, scopes=ALL)
    root = UserFactory(is_superuser=True)
    MembershipFactory(user=root, organization=organization, role=Role.VIEWER)
    _, root_key = api_key_for(root, organization, scopes=ALL)
    root_token = obtain_tokens(asgi_server.url, root.username, PASSWORD)["access"]
    api = f"{asgi_server.url}/api/v1"

    mine = httpx.get(f"{api}/me/export", headers=bearer(colleague_key))
    assert mine.status_code == 200, mine.text
    assert mine.headers["content-type"] == "application/zip"
    profile = json.loads(zipfile.ZipFile(io.BytesIO(mine.content)).read("profile.json"))
    assert profile["username"] == colleague.username

    org_zip = httpx.get(f"{api}/organizations/{organization.pk}/export", headers=bearer(owner_key))
    assert org_zip.status_code == 200, org_zip.text
    assert "members.json" in zipfile.ZipFile(io.BytesIO(org_zip.content)).namelist()
    refused = httpx.get(
        f"{api}/organizations/{organization.pk}/export", headers=bearer(colleague_key)
    )
    assert_envelope(refused, 403)
    foreign = Organization.objects.create(name="Elsewhere", slug="elsewhere")
    assert_envelope(
        httpx.get(f"{api}/organizations/{foreign.pk}/export", headers=bearer(owner_key)), 404
    )

    erase = f"{api}/users/{colleague.pk}/erase/"
    assert_envelope(httpx.post(erase, json={}, headers=bearer(owner_key)), 403)
    # A key never carries its owner's superuser power: erasing takes a signed-in superuser.
    assert_envelope(httpx.post(erase, json={}, headers=bearer(root_key)), 403)
    bad = assert_envelope(
        httpx.post(erase, json={"dry_run": "maybe"}, headers=bearer(root_token)), 400
    )
    assert "dry_run" in json.dumps(bad["error"]["details"])
    planned = httpx.post(erase, json={}, headers=bearer(root_token))  # a dry run by default
    assert planned.status_code == 200, planned.text
    assert planned.json()["dry_run"] is True
    assert User.objects.get(pk=colleague.pk).username == colleague.username
    done = httpx.post(erase, json={"dry_run": False}, headers=bearer(root_token))
    assert done.status_code == 200, done.text
    assert User.objects.get(pk=colleague.pk).username == done.json()["pseudonym"]
    # Their key stopped working with the erasure.
    assert httpx.get(f"{api}/me/", headers=bearer(colleague_key)).status_code == 401
    assert_envelope(
        httpx.post(f"{api}/users/999999/erase/", json={}, headers=bearer(root_token)), 404
    )
    assert AuditLog.objects.filter(action="user.erase", source="api").count() == 1


@pytest.mark.django_db
def test_management_commands(tmp_path: Path) -> None:
    person = member(Role.OWNER)
    target = tmp_path / "person.zip"
    call_command("export_user", person.username, "-o", str(target), stdout=io.StringIO())
    assert json.loads(zipfile.ZipFile(target).read("profile.json"))["email"] == person.email
    organization = Organization.objects.get(memberships__user=person)
    org_target = tmp_path / "org.zip"
    call_command(
        "export_organization", organization.slug, "-o", str(org_target), stdout=io.StringIO()
    )
    assert "organization.json" in zipfile.ZipFile(org_target).namelist()

    printed = io.StringIO()
    call_command("erase_user", person.username, "--dry-run", stdout=printed)
    assert json.loads(printed.getvalue())["organizations_deleted"] == [organization.pk]
    assert User.objects.get(pk=person.pk).username == person.username
    call_command("erase_user", str(person.pk), stdout=io.StringIO())
    assert not User.objects.get(pk=person.pk).is_active
    assert not Organization.objects.filter(pk=organization.pk).exists()
    with pytest.raises(CommandError, match="No such user"):
        call_command("erase_user", "nobody-here", stdout=io.StringIO())
    sources = set(
        AuditLog.objects.filter(action__startswith="user.").values_list("source", flat=True)
    )
    assert sources == {"cli"}


@pytest.mark.django_db
def test_admin_actions(admin_browser: Client) -> None:
    person = member()
    changelist = "/admin/accounts/user/"
    dry = admin_browser.post(
        changelist, {"action": "erase_users_dry_run", "_selected_action": [person.pk]}
    )
    assert dry.status_code == 302
    assert any("dry run" in str(m) for m in get_messages(dry.wsgi_request))
    assert User.objects.get(pk=person.pk).is_active
    done = admin_browser.post(
        changelist, {"action": "erase_users", "_selected_action": [person.pk]}
    )
    assert done.status_code == 302
    assert not User.objects.get(pk=person.pk).is_active
    assert AuditLog.objects.get(action="user.erase").source == "admin"


@pytest.mark.django_db
def test_admin_sets_a_retention_policy_through_the_service(admin_browser: Client) -> None:
    organization = Organization.objects.create(name="Kept", slug="kept")
    added = admin_browser.post(
        "/admin/privacy/retentionpolicy/add/",
        {"organization": organization.pk, "results_days": "30", "check_history_days": "0"},
    )
    assert added.status_code == 200  # refused: 0 days is not a period
    assert b"from 1 to" in added.content
    added = admin_browser.post(
        "/admin/privacy/retentionpolicy/add/",
        {"organization": organization.pk, "results_days": "30", "check_history_days": ""},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    audit = AuditLog.objects.get(action="retention.set")
    assert audit.source == "admin"
    assert audit.details == {"results_days": 30, "raw_logs_days": None, "check_history_days": None}

"""The admin: saves through the registry's services, status in the list, and the "test
connection" action checking a real service on loopback."""

from __future__ import annotations

import pytest
from django.test import Client

from simlab.audit.models import AuditLog
from simlab.core.actor import Actor
from simlab.registry.models import CheckResult, Service
from simlab.registry.scripted import Served
from simlab.registry.secrets import decrypt_headers
from simlab.registry.services import service_test_connection
from tests.factories import OrganizationFactory
from tests.registry.factories import registered

pytestmark = pytest.mark.django_db


def admin_form(**fields: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "admin made",
        "url": "http://127.0.0.1:9/wes",
        "kind": "ga4gh-wes",
        "visibility": "organization",
        "description": "",
        "enabled": "on",
        "interval_s": 300,
        "unhealthy_interval_s": 60,
        "timeout_s": 10,
        "failure_threshold": 3,
        "success_threshold": 2,
        "jitter_s": 0,
        "expected_status": "[]",
        "json_equals": "{}",
        "tags": '["gpu"]',
        "maintenance": "[]",
        "notify_webhooks": "[]",
        "notify_emails": "[]",
        "notify_apprise": "[]",
    }
    form.update(fields)
    return form


def test_adding_a_service_goes_through_the_service_and_its_rules(admin_browser: Client) -> None:
    organization = OrganizationFactory()
    refused = admin_browser.post(
        "/admin/registry/service/add/", admin_form(organization=organization.pk, timeout_s=60)
    )
    assert refused.status_code == 200
    assert "Must be shorter than unhealthy_interval_s." in refused.content.decode()
    assert not Service.objects.exists()
    added = admin_browser.post(
        "/admin/registry/service/add/", admin_form(organization=organization.pk)
    )
    assert added.status_code == 302, added.content.decode()[:3000]
    service = Service.objects.get()
    assert service.tags == ["gpu"]
    assert hasattr(service, "state")  # the checker's row exists from the start
    assert AuditLog.objects.get(action="registry.service.create").source == "admin"


def test_the_list_shows_status_and_test_connection_checks_now(
    admin_browser: Client, fake: Served
) -> None:
    service = registered(f"{fake.url}/s/ok/0/1", name="fake wes")
    listed = admin_browser.get("/admin/registry/service/")
    assert "unknown" in listed.content.decode()
    tested = admin_browser.post(
        "/admin/registry/service/",
        {"action": "test_connection", "_selected_action": [service.pk]},
        follow=True,
    )
    page = tested.content.decode()
    assert "Fake wes: up, 200 in" in page  # the admin capitalises messages
    assert CheckResult.objects.filter(service=service, ok=True).count() == 1
    assert ">up<" in admin_browser.get("/admin/registry/service/").content.decode()


def test_credentials_are_set_kept_replaced_and_cleared_and_never_shown(
    admin_browser: Client, fake: Served
) -> None:
    guarded = f"{fake.url}/auth/s3cret"
    organization = OrganizationFactory()
    added = admin_browser.post(
        "/admin/registry/service/add/",
        admin_form(
            organization=organization.pk,
            url=guarded,
            kind="http",
            credentials='{"Authorization": "Bearer s3cret"}',
        ),
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    service = Service.objects.get()
    assert decrypt_headers(service.credentials_encrypted) == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in service.credentials_encrypted
    change = f"/admin/registry/service/{service.pk}/change/"
    page = admin_browser.get(change).content.decode()
    assert "Bearer s3cret" not in page
    assert service.credentials_encrypted not in page
    assert 'alt="True"' in page  # "credentials stored"
    assert service_test_connection(Actor.system(), service.pk).ok  # the check sends them

    # Blank keeps them (an edit of another field does not lose them).
    kept = admin_browser.post(change, admin_form(url=guarded, kind="http", description="x"))
    assert kept.status_code == 302, kept.content.decode()[:2000]
    service.refresh_from_db()
    assert service.description == "x"
    assert decrypt_headers(service.credentials_encrypted) == {"Authorization": "Bearer s3cret"}

    # Bad input is a form error on the field, and nothing changes; the typed text is not
    # echoed back either.
    refused = admin_browser.post(
        change, admin_form(url=guarded, kind="http", credentials='{"Bad: name": "Bearer typo"}')
    )
    assert refused.status_code == 200
    assert "credentials" in refused.context["adminform"].form.errors
    assert "Bearer typo" not in refused.content.decode()
    refused = admin_browser.post(
        change,
        admin_form(url=guarded, kind="http", credentials='{"A": "b"}', clear_credentials="on"),
    )
    assert "credentials" in refused.context["adminform"].form.errors

    replaced = admin_browser.post(
        change, admin_form(url=guarded, kind="http", credentials='{"Authorization": "Bearer new"}')
    )
    assert replaced.status_code == 302
    service.refresh_from_db()
    assert decrypt_headers(service.credentials_encrypted) == {"Authorization": "Bearer new"}
    assert service_test_connection(Actor.system(), service.pk).error == "status 401"

    cleared = admin_browser.post(
        change, admin_form(url=guarded, kind="http", clear_credentials="on")
    )
    assert cleared.status_code == 302
    service.refresh_from_db()
    assert service.credentials_encrypted == ""
    audits = AuditLog.objects.filter(action="registry.service.update", object_id=service.pk)
    assert [a.details.get("credentials") for a in audits.order_by("id")] == [
        None,
        "changed",
        "removed",
    ]
    assert all(a.source == "admin" for a in audits)
    assert not any("s3cret" in str(a.details) or "new" in str(a.details) for a in audits)

"""Incident notifications through the one sender, to real receivers on loopback: webhooks
and Apprise URLs (Apprise's own json:// notifier posting to the scripted service), one
message per target and transition, a failing target recorded without holding up the
others; and Apprise URLs refused on write by every door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.registry import services
from simlab.registry.models import Incident, Notification, Service
from simlab.registry.probe import ProbeResult
from simlab.registry.scripted import Served, free_port
from tests.factories import OrganizationFactory
from tests.registry.factories import deliver, hooks, registered
from tests.registry.test_admin import admin_form

pytestmark = pytest.mark.django_db


def checked(service: Service, at: datetime, ok: bool) -> None:
    services.checker_record(
        None, [ProbeResult(service.pk, at, ok, latency_ms=5.0, error="" if ok else "boom")]
    )


def test_each_transition_reaches_every_target_once_and_a_failing_one_is_recorded(
    fake: Served,
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    service = registered(
        f"{fake.url}/named/notified",
        failure_threshold=1,
        success_threshold=1,
        notify_webhooks=[f"{fake.url}/hooks/notify-webhook"],
        notify_apprise=[dead, f"json://127.0.0.1:{fake.port}/hooks/notify-apprise"],
    )
    t = datetime.now(UTC)
    checked(service, t, True)
    checked(service, t + timedelta(seconds=1), False)  # down: incident opened
    checked(service, t + timedelta(seconds=2), False)  # still down: no new message
    opened = deliver()
    assert sorted(o.channel for o in opened) == ["apprise", "apprise", "webhook"]
    assert deliver() == []  # each goes out once
    (received,) = hooks(fake.url, "notify-apprise")
    assert received["title"] == f"[SimLab] {service.name} incident opened"
    assert "Cause: boom" in received["message"]
    assert received["type"] == "failure"
    assert [h["event"] for h in hooks(fake.url, "notify-webhook")] == ["incident.opened"]

    checked(service, t + timedelta(seconds=3), True)  # up: incident resolved
    assert len(deliver()) == 3
    assert [h["title"] for h in hooks(fake.url, "notify-apprise")] == [
        f"[SimLab] {service.name} incident opened",
        f"[SimLab] {service.name} incident resolved",
    ]
    assert hooks(fake.url, "notify-apprise")[1]["type"] == "success"
    assert len(hooks(fake.url, "notify-webhook")) == 2

    incident = Incident.objects.get(service=service)
    rows = Notification.objects.filter(incident=incident)
    assert rows.count() == 6  # three targets, two transitions
    assert all(row.sent_at is not None for row in rows)
    failed = rows.filter(target=dead)
    assert failed.count() == 2
    assert all(row.error.startswith("apprise: ") for row in failed)
    assert not rows.exclude(target=dead).exclude(error="").exists()


def test_a_bad_apprise_url_is_refused_naming_its_field() -> None:
    with pytest.raises(ValidationFailed) as refused:
        registered("http://127.0.0.1:9/x", notify_apprise=["json://127.0.0.1/ok", "nope://x"])
    assert set(refused.value.details) == {"notify_apprise.1"}
    service = registered("http://127.0.0.1:9/y")
    with pytest.raises(ValidationFailed) as refused:
        services.service_update(Actor.system(), service.pk, notify_apprise=["https://plain.web"])
    assert set(refused.value.details) == {"notify_apprise.0"}
    # Apprise can notify the server itself (its syslog): not a target for a tenant.
    with pytest.raises(ValidationFailed) as refused:
        services.service_update(Actor.system(), service.pk, notify_apprise=["syslog://"])
    assert refused.value.details["notify_apprise.0"] == [
        "Value error, notifications to this server itself are not allowed"
    ]


def test_the_admin_form_validates_and_saves_apprise_urls(admin_browser: Client) -> None:
    organization = OrganizationFactory()
    refused = admin_browser.post(
        "/admin/registry/service/add/",
        admin_form(organization=organization.pk, notify_apprise='["nope://x"]'),
    )
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "notify_apprise" in errors
    assert not Service.objects.exists()
    added = admin_browser.post(
        "/admin/registry/service/add/",
        admin_form(organization=organization.pk, notify_apprise='["json://127.0.0.1:9/h"]'),
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert Service.objects.get().notify_apprise == ["json://127.0.0.1:9/h"]

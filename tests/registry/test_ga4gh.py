"""The GA4GH Service Registry read side: the specification's shapes, health as an
extension, `?usable=true`, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from simlab.accounts.models import Role
from simlab.registry import services
from simlab.registry.probe import ProbeResult
from simlab.registry.scripted import SERVICE_INFO
from tests.factories import OrganizationFactory, member
from tests.registry.factories import registered

pytestmark = pytest.mark.django_db
BASE = "/ga4gh/registry/v1"


def checked(service_id: int, ok: bool) -> None:
    at = datetime.now(UTC)
    info = SERVICE_INFO if ok else None
    result = ProbeResult(service_id, at, ok, latency_ms=12.5, service_info=info, conformant=ok)
    services.checker_record(None, [result])


def test_services_types_and_usable_by_me() -> None:
    mine = OrganizationFactory()
    browser = Client()
    browser.force_login(member(Role.VIEWER, mine))
    up = registered("http://127.0.0.1:9/a", organization=mine, kind="ga4gh-wes")
    down = registered("http://127.0.0.1:9/b", organization=mine, kind="tes", failure_threshold=1)
    foreign = registered("http://127.0.0.1:9/c", organization=OrganizationFactory())
    checked(up.pk, True)
    checked(down.pk, False)
    listed = browser.get(f"{BASE}/services").json()
    assert sorted(int(s["id"]) for s in listed) == sorted([up.pk, down.pk])
    first = next(s for s in listed if s["id"] == str(up.pk))
    assert first["type"] == {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
    assert first["organization"] == {"name": mine.name, "url": "http://127.0.0.1:9"}
    assert first["health"]["status"] == "up"
    assert first["health"]["latency_ms"] == 12.5
    assert first["health"]["usable"] is True
    usable = browser.get(f"{BASE}/services", {"usable": "true"}).json()
    assert [s["id"] for s in usable] == [str(up.pk)]
    types = browser.get(f"{BASE}/services/types").json()
    assert {t["artifact"] for t in types} == {"wes", "tes"}
    assert browser.get(f"{BASE}/services/{foreign.pk}").status_code == 404
    assert browser.get(f"{BASE}/services/not-a-number").status_code == 404
    assert browser.get(f"{BASE}/services/{up.pk}").json()["version"] == "1.0.0"


def test_the_registry_describes_itself_to_anyone() -> None:
    info = Client().get(f"{BASE}/service-info").json()
    assert info["type"]["artifact"] == "service-registry"
    assert Client().get(f"{BASE}/services").status_code in (401, 403)

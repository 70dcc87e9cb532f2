"""Usage through its doors over a real server: a REST create retried with the same
Idempotency-Key counts once; the report and its CSV/JSON downloads; the page, whose
figures equal the sum of the events; who may see it; bad filters named."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Organization, Role
from simlab.usage.models import Kind, UsageEvent
from tests.factories import PASSWORD, ProjectFactory, api_key_for, member
from tests.http import assert_envelope, bearer, browser_session
from tests.server import ServedApp
from tests.usage.factories import events_sum, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ALL = ["read", "write", "compute", "admin"]
TODAY = datetime.now(UTC).date()  # usage days are UTC days


def _get(url: str, **options: Any) -> httpx.Response:
    return httpx.get(url, timeout=60, **options)


def _admin_key(role: Role = Role.ADMIN) -> tuple[Organization, str]:
    user = member(role)
    organization = user.memberships.get().organization
    return organization, api_key_for(user, organization, scopes=ALL)[1]


def _some_usage(organization: Organization) -> None:
    for offset, kind, quantity in [
        (0, Kind.CPU_MS, 1200),
        (0, Kind.CPU_MS, 34),
        (0, Kind.PARTICLES, 5000),
        (2, Kind.LLM_TOKENS, 150),
        (2, Kind.HEALTH_CHECKS, 7),
        (40, Kind.CPU_MS, 99),  # outside the default 30 days
    ]:
        recorded(organization, kind, quantity, day=TODAY - timedelta(days=offset))


def test_a_create_retried_with_the_same_idempotency_key_counts_once(
    asgi_server: ServedApp,
) -> None:
    organization, key = _admin_key()
    project = ProjectFactory(organization=organization)
    body = {"algorithm": "dla", "parameters": {"n_particles": 100}, "seed": 3, "queue": False}
    url = f"{asgi_server.url}/api/v1/projects/{project.pk}/simulations/"
    for _ in range(3):
        answer = httpx.post(
            url, json=body, headers=bearer(key) | {"Idempotency-Key": "once"}, timeout=60
        )
        assert answer.status_code == 201, answer.text
    report = _get(
        f"{asgi_server.url}/api/v1/organizations/{organization.pk}/usage/",
        params={"kind": "simulations"},
        headers=bearer(key),
    )
    assert report.status_code == 200, report.text
    assert report.json()["totals"] == {"simulations": 1}
    assert events_sum(organization, Kind.SIMULATIONS) == 1


def test_the_report_and_its_downloads_hold_the_rollup(asgi_server: ServedApp) -> None:
    organization, key = _admin_key(Role.OWNER)
    _some_usage(organization)
    url = f"{asgi_server.url}/api/v1/organizations/{organization.pk}/usage/"
    report = _get(url, headers=bearer(key))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["start"] == (TODAY - timedelta(days=29)).isoformat()
    assert body["end"] == TODAY.isoformat()
    assert body["totals"] == {
        "simulations": 0,
        "cpu_ms": 1234,
        "particles": 5000,
        "storage_bytes": 0,
        "llm_tokens": 150,
        "health_checks": 7,
    }
    assert {"day": TODAY.isoformat(), "kind": "cpu_ms", "quantity": 1234, "events": 2} in body[
        "days"
    ]

    start = (TODAY - timedelta(days=45)).isoformat()
    as_csv = _get(url, params={"start": start, "format": "csv"}, headers=bearer(key))
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sum(int(r["quantity"]) for r in rows if r["kind"] == "cpu_ms") == events_sum(
        organization, Kind.CPU_MS
    )
    assert len(rows) == 5

    as_json = _get(url, params={"kind": "llm_tokens", "format": "json"}, headers=bearer(key))
    assert as_json.status_code == 200, as_json.text
    assert "attachment" in as_json.headers["content-disposition"]
    assert as_json.json()["days"] == [
        {
            "day": (TODAY - timedelta(days=2)).isoformat(),
            "kind": "llm_tokens",
            "quantity": 150,
            "events": 1,
        }
    ]


def test_members_are_refused_and_a_foreign_organisation_is_not_found(
    asgi_server: ServedApp,
) -> None:
    organization, _ = _admin_key()
    viewer = member(Role.VIEWER, organization)
    _, viewer_key = api_key_for(viewer, organization, scopes=ALL)
    url = f"{asgi_server.url}/api/v1/organizations/{organization.pk}/usage/"
    assert_envelope(_get(url, headers=bearer(viewer_key)), 403)
    _, stranger_key = _admin_key(Role.OWNER)
    assert_envelope(_get(url, headers=bearer(stranger_key)), 404)
    assert_envelope(_get(url), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"kind": "gpu_hours"}, "kind"),
        ({"format": "xml"}, "format"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "start"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(
    asgi_server: ServedApp, params: dict[str, str], field: str
) -> None:
    organization, key = _admin_key()
    url = f"{asgi_server.url}/api/v1/organizations/{organization.pk}/usage/"
    body = assert_envelope(_get(url, params=params, headers=bearer(key)), 400)
    assert field in body["error"]["details"], body


def _cells(page: str) -> tuple[list[str], dict[str, list[int]], list[int]]:
    """The usage table: its kinds (column headers), each day's figures, the totals row."""
    table = re.search(r'<table id="usage-table">(.*?)</table>', page, re.S)
    assert table, page[-3000:]
    kinds = re.findall(r'data-kind="([a-z_]+)"', table.group(1))
    days = {
        day: [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', cells)]
        for day, cells in re.findall(
            r'<tr><th scope="row"><time datetime="([\d-]+)">.*?</th>(.*?)</tr>', table.group(1)
        )
    }
    footer = re.search(r"<tfoot>(.*?)</tfoot>", table.group(1), re.S)
    assert footer
    totals = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', footer.group(1))]
    return kinds, days, totals


def test_the_usage_page_figures_equal_the_sum_of_events(asgi_server: ServedApp) -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    _some_usage(organization)
    start = (TODAY - timedelta(days=60)).isoformat()
    with browser_session(asgi_server.url, admin.username, PASSWORD) as client:
        assert "/usage/" in client.get(f"/organizations/{organization.pk}/").text
        page = client.get(f"/organizations/{organization.pk}/usage/", params={"start": start})
        assert page.status_code == 200, page.text[-2000:]
        kinds, days, totals = _cells(page.text)
        assert kinds == list(Kind.values)
        for kind, total in zip(kinds, totals, strict=True):
            assert total == events_sum(organization, Kind(kind)), kind
            per_day = sum(figures[kinds.index(kind)] for figures in days.values())
            assert per_day == total, kind
        for day, figures in days.items():
            for kind, figure in zip(kinds, figures, strict=True):
                midnight = datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)
                on_day = UsageEvent.objects.filter(
                    organization=organization,
                    kind=kind,
                    occurred_at__gte=midnight,
                    occurred_at__lt=midnight + timedelta(days=1),
                ).values_list("quantity", flat=True)
                assert figure == sum(on_day), (day, kind)
        links = [html.unescape(h) for h in re.findall(r'href="([^"]*format=[^"]*)"', page.text)]
        assert len(links) == 2
        download = client.get(next(link for link in links if "format=csv" in link))
        assert download.status_code == 200, download.text
        assert download.text.count("\n") == 1 + 5  # header, then a line per day and kind

        bad = client.get(f"/organizations/{organization.pk}/usage/", params={"end": "soon"})
        assert bad.status_code == 400
        assert 'name="end"' in bad.text
        backwards = {"start": TODAY.isoformat(), "end": (TODAY - timedelta(days=1)).isoformat()}
        refused = client.get(f"/organizations/{organization.pk}/usage/", params=backwards)
        assert refused.status_code == 400
        assert "after end" in refused.text


def test_the_usage_page_is_for_owners_and_admins(asgi_server: ServedApp) -> None:
    viewer = member(Role.VIEWER)
    organization = viewer.memberships.get().organization
    with browser_session(asgi_server.url, viewer.username, PASSWORD) as client:
        assert client.get(f"/organizations/{organization.pk}/usage/").status_code == 403
        assert "/usage/" not in client.get(f"/organizations/{organization.pk}/").text
        foreign = member(Role.OWNER).memberships.get().organization
        assert client.get(f"/organizations/{foreign.pk}/usage/").status_code == 404

"""The registry in the browser: an operator registers a compute service in the admin,
tests its connection there (up, then down once the service fails), and the status page
shows it live, with its incident and its latency picture. The service is a scripted
server on loopback (simlab.registry.scripted), the platform a real `simlab up`."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Platform, assert_accessible, sign_in
from tests.registry.factories import set_mode

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def _test_connection(page: Any, platform: Platform, name: str) -> str:
    """The admin's action on one service; the message it leaves."""
    page.goto(f"{platform.url}/admin/registry/service/")
    page.get_by_role("row").filter(has_text=name).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("test_connection")
    page.get_by_role("button", name="Go").click()
    message = page.locator("ul.messagelist li").first
    message.wait_for()
    return str(message.inner_text())


def test_an_operator_registers_a_service_and_sees_it_on_the_status_page(
    page: Any, platform: Platform, fake: Any
) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="Admin").click()
    page.goto(f"{platform.url}/admin/registry/service/add/")
    page.locator("#id_name").fill("Partner WES")
    page.locator("#id_url").fill(f"{fake.url}/named/journey")
    page.locator("#id_kind").select_option("ga4gh-wes")
    page.locator("#id_failure_threshold").fill("1")
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.locator("ul.messagelist").inner_text().count("was added successfully") == 1

    said = _test_connection(page, platform, "Partner WES")
    assert said.startswith("Partner WES: up, 200 in "), said

    page.goto(f"{platform.url}/")
    page.get_by_role("link", name="Services").click()
    page.wait_for_url("**/services/")
    row = page.get_by_role("row").filter(has_text="Partner WES")
    assert row.locator(".status").inner_text() == "Up"
    assert "100.00 %" in row.inner_text()
    assert_accessible(page)

    set_mode(fake.url, "journey", "status503")
    said = _test_connection(page, platform, "Partner WES")
    assert said.startswith("Partner WES: down: "), said
    assert "503" in said

    page.goto(f"{platform.url}/services/")
    row = page.get_by_role("row").filter(has_text="Partner WES")
    assert row.locator(".status").inner_text() == "Down"
    row.get_by_role("link", name="Partner WES").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
    expect(page.get_by_text("open", exact=True)).to_be_visible()
    picture = page.get_by_role("img", name="Latency of Partner WES")
    picture.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
    )
    assert_accessible(page)

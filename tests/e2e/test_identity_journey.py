"""Identity journeys in the browser: an API key made in the UI, used from an HTTP
client, revoked, then refused; a colleague added as a viewer who can look but not start
runs; each action in the audit log."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def test_an_api_key_from_the_ui_works_until_revoked(page: Any, platform: Platform) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="API keys").click()
    assert_accessible(page)
    page.get_by_label("Name").fill("notebook")
    page.get_by_role("button", name="Create the key").click()
    secret = page.get_by_label("Key", exact=True).input_value()
    assert secret
    assert_accessible(page)

    projects = httpx.get(f"{platform.url}/api/v1/projects/", headers={"X-API-Key": secret})
    assert projects.status_code == 200
    assert projects.json()["results"]

    page.goto(f"{platform.url}/api-keys/")
    assert secret not in page.content()  # shown only once
    page.get_by_role("button", name="Revoke key notebook").click()
    expect(page.get_by_text("The key is revoked")).to_be_visible()
    refused = httpx.get(f"{platform.url}/api/v1/projects/", headers={"X-API-Key": secret})
    assert refused.status_code == 401


def test_a_viewer_added_in_the_ui_can_look_but_not_start_runs(
    browser: Any, page: Any, platform: Platform
) -> None:
    platform.create_user("vera", "vera-password-123", "vera@example.org")
    sign_in(page, platform)
    page.get_by_role("link", name="Organisation").click()
    assert_accessible(page)
    page.get_by_label("Username or e-mail").fill("vera@example.org")
    page.locator("#id_role").select_option("viewer")  # the new member's role
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("vera is now a member.")).to_be_visible()

    viewer = browser.new_context().new_page()
    sign_in(viewer, platform, "vera", "vera-password-123")
    viewer.get_by_role("link", name="Runs", exact=True).click()
    assert viewer.url.endswith("/runs/")
    viewer.get_by_role("link", name="New run").click()
    expect(viewer.get_by_text("lets you look, not start runs")).to_be_visible()
    assert viewer.get_by_role("button", name="Queue the run").is_disabled()
    assert_accessible(viewer)

    page.get_by_role("link", name="Audit log").click()
    assert_accessible(page)
    page.get_by_label("Door").select_option("web")
    page.get_by_role("button", name="Apply").click()
    log = page.get_by_role("table").inner_text()
    for action in ("api_key.create", "api_key.revoke", "membership.set"):
        assert action in log, log

"""In the browser, on site A with site B registered (two real `simlab up`, as in
test_remote_sites): a run started from A's new-run form on B, its page saying so while it
runs there and once it has finished, with the picture fetched from B."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.conftest import Platform, assert_accessible, sign_in
from tests.e2e.sites import SITE_A, SITE_B, demo_login, register, signed_client, site

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_run_sent_to_a_registered_site_from_the_form(page: Any, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        _, b_url = stack.enter_context(site(tmp_path / "b", tmp_path / "b.log", SITE_B))
        _, a_url = stack.enter_context(site(tmp_path / "a", tmp_path / "a.log", SITE_A))
        b = stack.enter_context(signed_client(b_url, tmp_path / "b.log"))
        a = stack.enter_context(signed_client(a_url, tmp_path / "a.log"))
        register(a, b, b_url, name="Site B")
        platform = Platform(a_url, *demo_login(tmp_path / "a.log"), tmp_path / "a", tmp_path)

        sign_in(page, platform)
        page.get_by_role("link", name="New run").first.click()
        page.wait_for_url("**/runs/new/")
        choice = page.get_by_label("Run on")
        assert choice.input_value() == ""  # this SimLab unless another is chosen
        choice.select_option(label="Site B (simlab)")
        assert_accessible(page)
        page.get_by_label("N Particles (particles)").fill("20000")
        page.get_by_role("button", name="Queue the run").click()
        page.wait_for_url("**/runs/*/")
        run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

        # Sent to B: the badge says where; once B runs it the page says running there.
        badge = page.locator(".tag.remote").first
        assert badge.inner_text().startswith("on Site B · ")
        seen = {badge.inner_text()}
        status = page.locator(".status").first
        for _ in range(300):
            try:
                page.reload()
            except PlaywrightError as exc:
                # The page reloads itself when the run ends: a reload of ours that meets
                # that navigation is aborted; the page's own one loads instead.
                if "ERR_ABORTED" not in str(exc):
                    raise
                page.wait_for_load_state()
            seen.add(badge.inner_text())
            # Finished here too: the page no longer reloads itself when the run ends (B may
            # say complete a moment before its result is fetched here).
            if "on Site B · complete" in seen and "Succeeded" in status.inner_text():
                break
            page.wait_for_timeout(200)
        assert "on Site B · complete" in seen, seen
        assert seen & {"on Site B · queued", "on Site B · running"}, seen
        assert_accessible(page)
        details = page.locator(".remote-target").inner_text()
        assert "Site B" in details
        theirs = re.search(r"Its run there\s+(\d+)", details)
        assert theirs, details
        assert "Succeeded" in status.inner_text()
        picture = page.get_by_role("img", name=re.compile(f"result of run {run_id}"))
        assert picture.evaluate("(img) => img.complete && img.naturalWidth > 0")

        # B ran it as its own run; A's list shows where it went.
        ran = b.get(f"/api/v1/simulations/{theirs.group(1)}/").json()
        assert ran["status"] == "SUCCEEDED"
        assert ran["parameters"]["n_particles"] == 20000
        page.get_by_role("link", name="Runs").first.click()
        row = page.locator("tr", has=page.get_by_role("link", name=f"#{run_id}"))
        assert "on Site B · complete" in row.inner_text()

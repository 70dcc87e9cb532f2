"""The playground in the browser: an interactive DLA over /ws/compute drawn live on the
canvas as its frames arrive, then stopped."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def _drawn(page: Any) -> int:
    return int(page.locator(".help span").first.inner_text())


def test_the_playground_draws_live_frames_and_stops(page: Any, platform: Platform) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="Playground").click()
    assert_accessible(page)
    # The page's script is bound once it says so; settings made before would be reset.
    expect(page.locator(".pg-state")).to_have_text("Ready.")
    page.get_by_label("Particles").fill("200000")
    page.get_by_label("Seed (empty: random)").fill("5")
    page.get_by_role("button", name="Run").click()
    page.wait_for_function(
        "() => Number(document.querySelector('.help span').textContent) > 2000", timeout=60_000
    )
    first = _drawn(page)
    page.wait_for_timeout(500)
    assert _drawn(page) > first  # frames keep arriving
    painted = page.evaluate(
        """() => {
            const canvas = document.querySelector('canvas');
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }"""
    )
    assert painted > 500
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped.").wait_for(timeout=10_000)
    stopped_at = _drawn(page)
    page.wait_for_timeout(500)
    assert _drawn(page) == stopped_at
    assert page.evaluate("() => window.simlabFps") > 0

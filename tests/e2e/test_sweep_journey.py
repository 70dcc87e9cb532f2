"""A sweep in the browser: 2 parameters x 3 seeds from the form (its size shown before
submitting), its runs finishing live, the table of means and spreads, the plot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_two_parameter_sweep_with_its_table_and_plot(page: Any, platform: Platform) -> None:
    sign_in(page, platform)
    page.get_by_role("link", name="Sweeps").click()
    page.get_by_role("link", name="New sweep").click()
    page.get_by_label("Algorithm", exact=True).select_option("random_walk")
    page.wait_for_url("**algorithm=random_walk")
    assert_accessible(page)
    page.get_by_label("Parameter 1").select_option("steps")
    page.get_by_label("Values 1").fill("100, 400")
    page.get_by_label("Parameter 2").select_option("walkers")
    page.get_by_label("Values 2").fill("10, 20")
    page.get_by_label("Seeds per point").fill("3")
    size = page.locator(".size")
    size.wait_for()
    assert "12 runs" in size.inner_text()  # 2 x 2 points x 3 seeds, before submitting
    page.get_by_role("button", name="Queue the sweep").click()
    page.wait_for_url("**/sweeps/*/")
    assert_accessible(page)

    # The children's statuses arrive live; once all are done the table is complete.
    statuses = page.locator("tbody .status")
    page.wait_for_function(
        "() => [...document.querySelectorAll('tbody .status')]"
        ".filter(e => e.textContent.trim() === 'Succeeded').length === 12",
        timeout=120_000,
    )
    assert statuses.count() == 12
    page.reload()
    assert "12 of 12 runs succeeded" in page.content()
    page.get_by_label("Metric", exact=True).select_option("diffusion_exponent")
    plot = page.get_by_role("img", name="Plot of diffusion_exponent")
    plot.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 640", arg=plot.element_handle()
    )
    assert page.get_by_role("row").filter(has_text="3/3").count() == 4
    assert_accessible(page)

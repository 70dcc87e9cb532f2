"""Surrogates in the browser: a finished sweep (seed replicas, run by the platform's
worker), a surrogate trained from its page until ready, its prediction curve with the
band over the measured runs, and an adaptive sweep started from the same page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(300)]

# final_rms_distance grows as sqrt(steps): a law a surrogate learns from 6 points x 2 seeds.
# (With 4 points, leaving a point out is extrapolation for half of the folds, and about one
# sweep in 15 was honestly refused for a cross-validated R^2 below zero.)
_SWEEP = """
from django.contrib.auth import get_user_model
from simlab.accounts.models import Membership
from simlab.core.actor import Actor, Source
from simlab.projects.models import Project
from simlab.simulations.services import sweep_create
user = get_user_model().objects.get(username={username!r})
organization = Membership.objects.filter(user=user).order_by("id").first().organization_id
project = Project.objects.filter(organization_id=organization).order_by("id").first()
sweep = sweep_create(
    Actor(user_id=user.pk, source=Source.CLI, username=user.username),
    project_id=project.pk, algorithm="random_walk",
    axes=[{{"parameter": "steps", "values": [100, 200, 400, 800, 1600, 3200]}}],
    base_parameters={{"walkers": 20}}, seeds_per_point=2, name="rms vs steps",
)
print("SWEEP", sweep.pk)
"""


def test_a_surrogate_from_a_sweep_its_curve_and_an_adaptive_sweep(
    page: Any, platform: Platform
) -> None:
    printed = platform.shell(_SWEEP.format(username=platform.username))
    found = re.search(r"SWEEP (\d+)", printed)
    assert found, printed
    sweep_url = f"{platform.url}/sweeps/{found.group(1)}/"
    sign_in(page, platform)
    page.goto(sweep_url)
    _reload_until(page, lambda: "12 of 12 runs succeeded" in page.content())

    # Train from the page; its status refreshes by itself until the worker is done.
    page.get_by_label("Model name").fill("rms")
    page.get_by_label("Metric to predict").select_option("final_rms_distance")
    page.get_by_role("button", name="Train the surrogate").click()
    page.wait_for_url(sweep_url)
    assert "Training of rms v1 queued" in page.content()
    settled = page.locator("#surrogates .status").filter(
        has_text=re.compile("Ready|Refused|Failed")
    )
    settled.wait_for(timeout=120_000)
    assert settled.inner_text().strip() == "Ready", page.locator("#surrogates").inner_text()
    assert_accessible(page)

    # The model's page: the curve along steps, with its band over the 12 runs.
    page.get_by_role("link", name="rms", exact=True).click()
    page.wait_for_url("**/surrogates/*/")
    plot = page.get_by_role("img", name=re.compile("Predicted final_rms_distance along steps"))
    plot.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 640", arg=plot.element_handle()
    )
    alt = plot.get_attribute("alt")
    assert "interval band" in alt
    assert "12 measured runs" in alt
    assert "at 6 points" in alt
    picture = page.request.get(page.url.rstrip("/") + "/curve.png")
    assert picture.headers["content-type"] == "image/png"
    assert picture.body()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(picture.body()) > 10_000
    assert_accessible(page)

    # An adaptive sweep over the same grid, from the sweep's page.
    page.goto(sweep_url)
    page.get_by_label("Metric to learn").select_option("final_rms_distance")
    page.get_by_label("Target accuracy (CV RMSE)").fill("0.01")
    page.get_by_label("Run budget").fill("6")
    page.get_by_role("button", name="Start the adaptive sweep").click()
    page.wait_for_url(sweep_url)
    assert "Adaptive study started: up to 6 runs of random_walk" in page.content()
    # Its first round's model shows among the sweep's surrogates once trained.
    _reload_until(page, lambda: "adaptive from sweep" in page.locator("#surrogates").inner_text())


def _reload_until(page: Any, done: Callable[[], bool], *, tries: int = 60) -> None:
    """Reload the page every 2 s until `done()` (the platform's worker is at work)."""
    for _ in range(tries):
        if done():
            return
        page.wait_for_timeout(2000)
        page.reload()
    assert done(), page.content()[-3000:]

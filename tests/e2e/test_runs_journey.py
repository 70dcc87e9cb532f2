"""A person's main journey in the browser: sign in, start a DLA run from the form, watch
its live status, see its picture, download it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Platform, assert_accessible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


# Tiles the map has drawn, as (z, x, y): loaded images of 256 px from the tiles URL.
_TILES_DRAWN = """() => [...document.querySelectorAll('.tile-map img.leaflet-tile-loaded')]
    .filter((img) => img.naturalWidth === 256)
    .map((img) => new URL(img.src).pathname.match(/tiles\\/(\\d+)\\/(\\d+)\\/(\\d+)\\.png$/))
    .filter(Boolean).map((m) => [Number(m[1]), Number(m[2]), Number(m[3])])"""
_LEVEL_DRAWN = f"(level) => ({_TILES_DRAWN})().some(([z]) => z === level)"


def _tiles_drawn(page: Any) -> list[tuple[int, int, int]]:
    return [tuple(tile) for tile in page.evaluate(_TILES_DRAWN)]


def test_a_dla_run_from_the_form_to_its_picture(page: Any, platform: Platform) -> None:
    tile_errors: list[str] = []
    page.on(
        "response",
        lambda r: (
            tile_errors.append(f"{r.status} {r.url}")
            if "/tiles/" in r.url and r.status != 200
            else None
        ),
    )
    sign_in(page, platform)
    assert_accessible(page)  # the dashboard

    page.get_by_role("link", name="New run").first.click()
    page.wait_for_url("**/runs/new/")
    assert_accessible(page)
    page.get_by_label("N Particles (particles)").fill("0")
    page.get_by_role("button", name="Queue the run").click()
    error = page.locator(".field.invalid .error")
    assert "greater than or equal to 1" in error.inner_text()  # beside the field
    page.get_by_label("N Particles (particles)").fill("500000")
    page.get_by_label("Seed", exact=True).fill("11")
    page.get_by_role("button", name="Queue the run").click()
    page.wait_for_url("**/runs/*/")
    run_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert_accessible(page)

    # The status follows the run live over the page's socket, then the page shows the
    # picture (it reloads itself once the run has finished).
    # Meanwhile the cluster is drawn as it grows, from the socket's growth messages.
    seen: list[str] = []
    drawn: list[int] = []
    etas: set[str] = set()  # the ETA beside the progress bar, from the live states
    growing = page.get_by_role("img", name=f"The cluster of run {run_id} as it grows")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = page.locator(".status").first.inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if text == "Succeeded":
            break
        if text.startswith("Running"):
            etas.add(page.locator(".eta").first.inner_text())
        if text.startswith("Running") and growing.count():
            count = int(page.locator(".growth figcaption span").inner_text() or 0)
            if not drawn or drawn[-1] != count:
                drawn.append(count)
        page.wait_for_timeout(50)
    assert seen[-1] == "Succeeded", seen
    assert any(label.startswith("Running") for label in seen), seen  # pushed live
    print("statuses seen:", seen, "points drawn:", drawn, "ETAs:", sorted(etas))
    assert any(re.fullmatch(r"ETA \d+s|ETA \d+m \d\ds", eta) for eta in etas), etas
    assert len([count for count in drawn if count > 0]) >= 2, drawn  # it grew on screen
    assert drawn == sorted(drawn), drawn

    # 500,000 particles: the page has the plain picture (drawn first, and all there is
    # without script) and a zoomable map of the tile pyramid that covers it once its
    # first tiles are drawn.
    picture = page.get_by_role("img", name="Picture of the result", include_hidden=True)
    picture.wait_for(state="attached", timeout=30_000)
    page.wait_for_function("() => document.querySelector('figure.result img').complete")
    assert page.evaluate("(img) => img.naturalWidth", picture.element_handle()) == 800
    tile_map = page.get_by_role("region", name="Zoomable picture of the result")
    tile_map.wait_for(timeout=30_000)
    page.wait_for_selector(".tile-map.ready", timeout=30_000)
    expect(picture).to_be_hidden()
    first_view = _tiles_drawn(page)
    assert first_view
    assert {z for z, _, _ in first_view} == {first_view[0][0]}, first_view  # one level
    assert_accessible(page)
    # Zoom in with the keyboard, then move right: new tiles of the finer level load.
    tile_map.focus()
    level = first_view[0][0]
    page.keyboard.press("+")
    page.wait_for_function(_LEVEL_DRAWN, arg=level + 1, timeout=15_000)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(500)
    zoomed = [tile for tile in _tiles_drawn(page) if tile[0] == level + 1]
    assert len(zoomed) >= 4, zoomed
    assert not tile_errors, tile_errors
    assert_accessible(page)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="picture (PNG)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".png")
    assert download.path().stat().st_size > 1000

    # The run is on the project's list, and its picture on the dashboard.
    page.get_by_role("link", name="Runs", exact=True).click()
    assert_accessible(page)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{run_id}"))
    assert "Succeeded" in row.inner_text()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("img", name=f"Picture of run {run_id}")).to_be_visible()

    # A second, smaller run, then both compared side by side from the list.
    page.get_by_role("link", name="New run").first.click()
    page.get_by_label("N Particles (particles)").fill("20000")
    page.get_by_role("button", name="Queue the run").click()
    page.wait_for_url("**/runs/*/")
    second_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.get_by_text("Succeeded").first.wait_for(timeout=60_000)
    page.get_by_role("link", name="Runs", exact=True).click()
    page.get_by_label(f"Select run {run_id}").check()
    page.get_by_label(f"Select run {second_id}").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/compare/**")
    expect(page.get_by_role("img", name=f"Picture of run {run_id}")).to_be_visible()
    expect(page.get_by_role("img", name=f"Picture of run {second_id}")).to_be_visible()
    assert "n_particles" in page.locator("tr.differs").first.inner_text()
    assert_accessible(page)

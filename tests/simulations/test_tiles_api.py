"""A large aggregate's zoomable picture over REST: tiles drawn from the stored pyramid,
cached by version, refused by name when out of range, private to the organisation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from simlab.engine.tiles import build_index, render_tile
from simlab.simulations import execution
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def _run(user: Any, n_particles: int) -> Simulation:
    project = ProjectFactory(organization=user.memberships.get().organization)
    (pk,) = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": n_particles}, 4)],
        queue=False,
    )
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)
    assert execution.execute(pk) == Status.SUCCEEDED
    return Simulation.objects.get(pk=pk)


@pytest.fixture
def owner(settings: SettingsWrapper) -> Any:
    settings.SIMLAB_TILES_MIN_PARTICLES = 1000
    return member(Role.MEMBER)


@pytest.fixture
def client(asgi_server: ServedApp, owner: Any) -> Iterator[httpx.Client]:
    access = obtain_tokens(asgi_server.url, owner.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        yield client


def test_tiles_are_drawn_from_the_stored_pyramid(owner: Any, client: httpx.Client) -> None:
    run = _run(owner, 15000)
    assert run.result_tiles.name.endswith("/tiles-1.bin")  # the attempt, as for the npz
    meta = client.get(f"/api/v1/simulations/{run.pk}/tiles.json").json()
    assert meta["particles"] == 15000
    assert meta["levels"] >= 2
    assert meta["tile_size"] == 256
    # The same pyramid, rebuilt here from the downloaded arrays, draws the same tiles.
    positions = np.load(io.BytesIO(client.get(f"/api/v1/simulations/{run.pk}/result.npz").content))
    rebuilt = build_index(positions["positions"], particle_radius=1.0)
    assert rebuilt.levels == meta["levels"]
    finest = meta["levels"]
    centre = 2 ** (finest - 1)
    for z, x, y in [(0, 0, 0), (1, 1, 1), (finest, centre, centre), (finest, 0, 0)]:
        url = meta["tile_url"].format(z=z, x=x, y=y)
        tile = client.get(url)
        assert tile.status_code == 200, tile.text
        assert tile.headers["content-type"] == "image/png"
        assert tile.content == render_tile(rebuilt, z, x, y), (z, x, y)
    picture = Image.open(io.BytesIO(client.get(meta["tile_url"].format(z=0, x=0, y=0)).content))
    assert picture.size == (256, 256)
    assert len(picture.getcolors() or []) > 20  # many arrival colours, not a blank tile


def test_versioned_tiles_are_immutable_and_others_revalidate(
    owner: Any, client: httpx.Client
) -> None:
    run = _run(owner, 2000)
    meta = client.get(f"/api/v1/simulations/{run.pk}/tiles.json").json()
    pinned = client.get(meta["tile_url"].format(z=1, x=0, y=0))
    assert pinned.headers["cache-control"] == "private, max-age=31536000, immutable"
    bare = client.get(f"/api/v1/simulations/{run.pk}/tiles/1/0/0.png")
    assert bare.headers["cache-control"] == "private, no-cache"
    assert bare.content == pinned.content
    again = client.get(
        f"/api/v1/simulations/{run.pk}/tiles/1/0/0.png",
        headers={"If-None-Match": bare.headers["etag"]},
    )
    assert again.status_code == 304
    assert not again.content


def test_bad_coordinates_are_refused_naming_the_field(owner: Any, client: httpx.Client) -> None:
    run = _run(owner, 2000)
    levels = client.get(f"/api/v1/simulations/{run.pk}/tiles.json").json()["levels"]
    base = f"/api/v1/simulations/{run.pk}/tiles"
    for path, status, code, field in [
        (f"{base}/{levels + 1}/0/0.png", 404, "tile_out_of_range", "z"),
        (f"{base}/1/2/0.png", 404, "tile_out_of_range", "x"),
        (f"{base}/1/0/2.png", 404, "tile_out_of_range", "y"),
        (f"{base}/a/0/0.png", 400, "validation_error", "z"),
        (f"{base}/1/-1/0.png", 400, "validation_error", "x"),
        (f"{base}/1/0/99999999999.png", 400, "validation_error", "y"),
    ]:
        response = client.get(path)
        assert_envelope(response, status, code)
        assert field in response.json()["error"]["details"], (path, response.json())


def test_another_organisations_run_is_404(
    owner: Any, client: httpx.Client, asgi_server: ServedApp
) -> None:
    foreign = _run(member(Role.OWNER), 2000)
    assert foreign.result_tiles.name
    for path in ("tiles.json", "tiles/0/0/0.png"):
        assert_envelope(client.get(f"/api/v1/simulations/{foreign.pk}/{path}"), 404, "not_found")


def test_small_results_have_no_pyramid_and_deleting_a_run_removes_it(
    owner: Any, client: httpx.Client, settings: SettingsWrapper
) -> None:
    settings.SIMLAB_TILES_MIN_PARTICLES = 5000
    small = _run(owner, 500)
    assert small.result_tiles.name == ""
    assert_envelope(client.get(f"/api/v1/simulations/{small.pk}/tiles.json"), 404, "no_tiles")
    assert_envelope(client.get(f"/api/v1/simulations/{small.pk}/tiles/0/0/0.png"), 404, "no_tiles")
    settings.SIMLAB_TILES_MIN_PARTICLES = 1000
    large = _run(owner, 1500)
    name = large.result_tiles.name
    assert default_storage.exists(name)
    assert client.delete(f"/api/v1/simulations/{large.pk}/").status_code == 204
    assert not default_storage.exists(name)

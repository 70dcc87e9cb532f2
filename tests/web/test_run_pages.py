"""The runs pages over a real server: the dashboard, a project's runs, the new-run form
generated from every algorithm's schema, a run's page, and the refusals (foreign
objects are the 404 page, a viewer cannot start runs, CSRF holds)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from simlab import engine
from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.simulations.execution import execute
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    actor_for,
    member,
)
from tests.http import browser_login, browser_session, invalid_field, post_form
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("algorithm", sorted(engine.algorithms()))
def test_the_form_of_every_algorithm_comes_from_its_schema(
    signed_in: tuple[httpx.Client, Any, Any], algorithm: str
) -> None:
    client, _, project = signed_in
    page = client.get(f"/projects/{project.pk}/runs/new/?algorithm={algorithm}")
    assert page.status_code == 200
    schema = engine.get_algorithm(algorithm).params_model.model_json_schema()
    for name, prop in schema["properties"].items():
        assert f'name="parameters.{name}"' in page.text, name
        assert prop["title"] in page.text
    assert 'name="seed"' in page.text


def test_a_run_from_the_form_is_queued_and_its_page_opens(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, user, project = signed_in
    done = post_form(
        client,
        f"/projects/{project.pk}/runs/new/?algorithm=dla",
        {"algorithm": "dla", "parameters.n_particles": "500", "parameters.dimension": "2",
         "parameters.lattice": "off", "seed": "7"},
    )  # fmt: skip
    assert done.status_code == 200
    run = Simulation.objects.get(project=project)
    assert done.url.path == f"/runs/{run.pk}/"
    assert (run.status, run.seed, run.parameters["n_particles"]) == (Status.QUEUED, 7, 500)
    assert f"Run #{run.pk}" in done.text
    created = AuditLog.objects.get(action="simulation.create")
    assert created.source == "web"
    assert created.actor_id == user.pk


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"parameters.n_particles": "0"}, "parameters.n_particles", "greater than or equal to 1"),
        ({"parameters.n_particles": "lots"}, "parameters.n_particles", "whole number"),
        ({"parameters.sticking_probability": "1.5"}, "parameters.sticking_probability", "1"),
        ({"seed": "-3"}, "seed", "greater than or equal to 0"),
    ],
)
def test_bad_input_is_a_400_with_the_error_beside_the_field(
    signed_in: tuple[httpx.Client, Any, Any], data: dict[str, str], field: str, text: str
) -> None:
    client, _, project = signed_in
    page = post_form(client, f"/projects/{project.pk}/runs/new/?algorithm=dla", data)
    assert page.status_code == 400
    # The error sits in the field's own block, right after its input.
    block = re.search(
        rf'<div class="field invalid">\s*<label for="id_{re.escape(field)}">.*?</div>',
        page.text,
        re.S,
    )
    assert block, page.text[:3000]
    assert text in block.group(0)
    assert not Simulation.objects.filter(project=project).exists()


def test_the_runs_list_filters_pages_and_cancels_through_the_service(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, user, project = signed_in
    ids = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("random_walk")] * 55 + [SimulationSpec("eden")] * 3,
        queue=False,
    )
    Simulation.objects.filter(pk__in=ids).update(status=Status.QUEUED)

    first = client.get(f"/projects/{project.pk}/runs/")
    shown = [int(i) for i in re.findall(r'href="/runs/(\d+)/"', first.text)]
    assert shown == sorted(ids, reverse=True)[:50]  # newest first, one page
    following = re.search(r'rel="next" href="\?([^"]+)"', first.text)
    assert following
    second = client.get(f"/projects/{project.pk}/runs/?{following.group(1).replace('&amp;', '&')}")
    rest = [int(i) for i in re.findall(r'href="/runs/(\d+)/"', second.text)]
    assert rest == sorted(ids, reverse=True)[50:]
    assert 'rel="next"' not in second.text

    eden = client.get(f"/projects/{project.pk}/runs/?algorithm=eden&sort=oldest")
    assert [int(i) for i in re.findall(r'href="/runs/(\d+)/"', eden.text)] == ids[55:]
    assert "No runs match" in client.get(f"/projects/{project.pk}/runs/?status=FAILED").text

    cancelled = post_form(
        client,
        f"/projects/{project.pk}/runs/cancel/",
        {"ids": [str(ids[0]), str(ids[1])]},
        form_on=f"/projects/{project.pk}/runs/",
    )
    assert cancelled.status_code == 200
    assert "Asked 2 run(s) to stop." in cancelled.text
    assert Simulation.objects.filter(pk__in=ids[:2], status=Status.CANCELLED).count() == 2
    assert AuditLog.objects.filter(action="simulation.cancel", source="web").count() == 2


def test_a_viewer_sees_but_cannot_start_runs(asgi_server: ServedApp) -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    project = ProjectFactory(organization=organization)
    viewer = member(Role.VIEWER, organization)
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True, timeout=30) as client:
        browser_login(client, viewer.username, PASSWORD)
        form = client.get(f"/projects/{project.pk}/runs/new/")
        assert "lets you look, not start runs" in form.text
        refused = post_form(client, f"/projects/{project.pk}/runs/new/", {"algorithm": "dla"})
        assert refused.status_code == 403
        assert "Not allowed" in refused.text
    assert not Simulation.objects.filter(project=project).exists()


def test_another_organisations_project_and_run_are_the_404_page(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, _, _ = signed_in
    stranger = member(Role.OWNER)
    theirs = ProjectFactory(organization=stranger.memberships.get().organization)
    (run_id,) = simulation_create_batch(
        actor_for(stranger), project_id=theirs.pk, specs=[SimulationSpec("eden")], queue=False
    )
    for path in (
        f"/projects/{theirs.pk}/",
        f"/projects/{theirs.pk}/runs/",
        f"/projects/{theirs.pk}/runs/new/",
        f"/runs/{run_id}/",
        "/runs/99999999/",
        "/runs/abc/",
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text


def test_forms_refuse_a_post_without_the_csrf_token(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, _, project = signed_in
    for path in (f"/projects/{project.pk}/runs/new/", "/ui/socket-token/"):
        refused = client.post(path, data={"algorithm": "dla"})
        assert refused.status_code == 403, path
    assert not Simulation.objects.filter(project=project).exists()


def test_the_run_page_shows_the_result_and_its_downloads(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, user, project = signed_in
    (run_id,) = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[SimulationSpec("dla", {"n_particles": 300}, seed=3)],
        queue=False,
    )
    Simulation.objects.filter(pk=run_id).update(status=Status.QUEUED)
    assert execute(run_id) == Status.SUCCEEDED
    page = client.get(f"/runs/{run_id}/")
    assert page.status_code == 200
    for link in ("picture.png", "result.npz", "metrics.json"):
        path = f"/api/v1/simulations/{run_id}/{link}"
        assert f'href="{path}"' in page.text
        assert client.get(path).status_code == 200
    assert "radius_of_gyration" in page.text
    assert "Seed" in page.text
    assert ">3<" in page.text
    dashboard = client.get(f"/projects/{project.pk}/")
    assert f'src="/api/v1/simulations/{run_id}/picture.png"' in dashboard.text


def test_a_large_aggregate_gets_a_zoomable_map_and_a_small_one_only_its_picture(
    signed_in: tuple[httpx.Client, Any, Any], settings: Any
) -> None:
    client, user, project = signed_in
    settings.SIMLAB_TILES_MIN_PARTICLES = 1000
    small, large = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[
            SimulationSpec("dla", {"n_particles": 300}, seed=3),
            SimulationSpec("dla", {"n_particles": 4000}, seed=3),
        ],
        queue=False,
    )
    Simulation.objects.filter(pk__in=[small, large]).update(status=Status.QUEUED)
    assert execute(small) == Status.SUCCEEDED
    assert execute(large) == Status.SUCCEEDED
    plain = client.get(f"/runs/{small}/").text
    assert "data-tile-map" not in plain
    assert f'alt="Picture of the result of run {small} (dla)"' in plain
    page = client.get(f"/runs/{large}/").text
    assert f'alt="Picture of the result of run {large} (dla)"' in page  # without script
    found = re.search(r'data-url="([^"]+)" data-levels="(\d+)"', page)
    assert found is not None
    tile = found[1].replace("&amp;", "&").format(z=1, x=0, y=0)
    assert tile.startswith(f"/api/v1/simulations/{large}/tiles/1/0/0.png?v=")
    answer = client.get(tile)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    for asset in ("vendor/leaflet.js", "vendor/leaflet.css", "web/tilemap.js"):
        assert f"/static/{asset}" in page  # the browser journey loads and uses them


def test_compare_shows_runs_side_by_side_with_the_differing_parameters_first(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, user, project = signed_in
    ids = simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[
            SimulationSpec("dla", {"n_particles": 300}, seed=1),
            SimulationSpec("dla", {"n_particles": 400}, seed=1),
        ],
        queue=False,
    )
    Simulation.objects.filter(pk__in=ids).update(status=Status.QUEUED)
    for simulation_id in ids:
        execute(simulation_id)
    page = client.get(f"/compare/?ids={ids[0]}&ids={ids[1]}")
    assert page.status_code == 200
    rows = re.findall(r'<tr( class="differs")?><th scope="row">(\w+)', page.text)
    differing = [name for marked, name in rows if marked]
    assert differing == ["n_particles"]  # the only parameter that differs, listed first
    names = [name for _, name in rows]
    assert names.index("n_particles") < names.index("dimension")
    for simulation_id in ids:
        assert f'src="/api/v1/simulations/{simulation_id}/picture.png"' in page.text
    assert "radius_of_gyration" in page.text

    assert client.get(f"/compare/?ids={ids[0]}").status_code == 400  # one is not a comparison
    stranger = member(Role.OWNER)
    theirs = ProjectFactory(organization=stranger.memberships.get().organization)
    (foreign,) = simulation_create_batch(
        actor_for(stranger), project_id=theirs.pk, specs=[SimulationSpec("eden")], queue=False
    )
    assert client.get(f"/compare/?ids={ids[0]}&ids={foreign}").status_code == 404


def test_tags_and_a_note_are_saved_through_the_service_and_filter_the_list(
    signed_in: tuple[httpx.Client, Any, Any],
) -> None:
    client, user, project = signed_in
    ids = simulation_create_batch(
        actor_for(user), project_id=project.pk, specs=[SimulationSpec("eden")] * 2, queue=False
    )
    page = f"/runs/{ids[0]}/"
    saved = post_form(
        client,
        f"/runs/{ids[0]}/note/",
        {"tags": "Baseline, paper-2,  baseline ", "note": "First try."},
        form_on=page,
    )
    assert "Tags and note saved." in saved.text
    run = Simulation.objects.get(pk=ids[0])
    assert (run.tag_list, run.note) == (["baseline", "paper-2"], "First try.")
    assert AuditLog.objects.get(action="simulation.annotate").source == "web"
    listed = client.get(f"/projects/{project.pk}/runs/?tag=paper-2")
    assert [int(i) for i in re.findall(r'href="/runs/(\d+)/"', listed.text)] == [ids[0]]
    assert "No runs match" in client.get(f"/projects/{project.pk}/runs/?tag=paper").text

    refused = post_form(
        client, f"/runs/{ids[1]}/note/", {"tags": "<script>", "note": ""}, form_on=page
    )
    assert refused.status_code == 400
    field = invalid_field(refused, "tags")  # beside the field, which keeps what was typed
    assert "At most 20 tags" in field
    assert 'value="&lt;script&gt;"' in field
    assert Simulation.objects.get(pk=ids[1]).tags == ""
    too_long = post_form(
        client, f"/runs/{ids[1]}/note/", {"tags": "", "note": "x" * 10_001}, form_on=page
    )
    assert too_long.status_code == 400
    assert "At most 10000" in invalid_field(too_long, "note")


def test_the_playground_says_whose_cpu_its_runs_count_against(asgi_server: ServedApp) -> None:
    first = MembershipFactory(
        organization__name="First Lab", created_at=timezone.now() - timedelta(days=1)
    )
    user = first.user
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        page = client.get("/playground/").text
        assert "CPU time counts against First Lab." in page
        assert 'id="pg-organization"' not in page
        assert f"playground(200000, '{first.organization_id}')" in page

        second = MembershipFactory(user=user, organization__name="Second Lab")
        MembershipFactory(user=user, organization__name="Viewed Lab", role=Role.VIEWER)
        page = client.get("/playground/").text
        choices = re.findall(
            r'<option value="(\d+)">([^<]+)</option>', page.split("pg-organization")[-1]
        )
        # Where a viewer may not spend CPU, it is not offered; the first joined comes first.
        assert choices == [
            (str(first.organization_id), "First Lab"),
            (str(second.organization_id), "Second Lab"),
        ]

    nobody = UserFactory()
    with browser_session(asgi_server.url, nobody.username, PASSWORD) as client:
        page = client.get("/playground/").text
        assert "you need to be a member of one to run" in page
        assert "playground(200000, '')" in page

"""Surrogate models on the pages over a real server: training one from a sweep's page
(the service REST uses, its errors beside the fields), the model's page with its
prediction curve, an adaptive sweep started from the page, and who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.analytics import services
from simlab.analytics.models import ModelVersion, SurrogateModel, VersionStatus
from simlab.audit.models import AuditLog
from simlab.core.actor import Actor, Source
from simlab.simulations.models import ParameterSweep
from tests.analytics.factories import measured_sweep
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import browser_session, csrf_token, invalid_field, post_form
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = ([0.3, 0.6, 1.0], [100, 300, 1000])


@pytest.fixture
def swept(asgi_server: ServedApp) -> Iterator[tuple[httpx.Client, ParameterSweep]]:
    """A member signed in, and a measured sweep of their project (3 x 3 points, 3 seeds)."""
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    sweep = measured_sweep(project, values=SMALL, seeds=3)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        yield client, sweep


def _train(client: httpx.Client, sweep: ParameterSweep, **data: str) -> httpx.Response:
    fields = {"name": "rg", "target": "radius_of_gyration", "level": "0.9", **data}
    return post_form(
        client, f"/sweeps/{sweep.pk}/surrogates/", fields, form_on=f"/sweeps/{sweep.pk}/"
    )


def test_train_from_the_sweep_page_then_its_curve(
    swept: tuple[httpx.Client, ParameterSweep],
) -> None:
    client, sweep = swept
    page = _train(client, sweep)
    assert page.url.path == f"/sweeps/{sweep.pk}/"
    version = ModelVersion.objects.get()
    assert (version.model.inputs, version.model.target) == (
        ["sticking_probability", "n_particles"],
        "radius_of_gyration",
    )
    assert version.source["sweep_ids"] == [sweep.pk]
    assert AuditLog.objects.get(action="surrogate.train").source == "web"
    # Still queued: the section polls itself until the version settles.
    assert "Queued" in page.text
    assert 'hx-trigger="every 2s"' in page.text

    services.version_train_run(version.pk)  # what the worker's task runs
    page = client.get(f"/sweeps/{sweep.pk}/")
    assert "Ready" in page.text
    assert 'hx-trigger="every 2s"' not in page.text
    model = client.get(f"/surrogates/{version.model_id}/")
    assert model.status_code == 200
    # The default curve: along the first input, the other held at its median grid value,
    # where 3 runs of 3 seeds were measured.
    assert "n_particles=300" in model.text
    assert "9 measured runs" in model.text
    assert "at 3 points" in model.text

    predictions = AuditLog.objects.filter(action="surrogate.predict").count()
    plot = client.get(f"/surrogates/{version.model_id}/curve.png?along=n_particles")
    assert plot.headers["content-type"] == "image/png"
    assert plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(plot.content) > 10_000
    assert AuditLog.objects.filter(action="surrogate.predict").count() == predictions + 1


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"target": "nope"}, "target", "Select a valid choice"),
        ({"name": ""}, "name", "required"),
        ({"level": "2"}, "level", "less than or equal to 0.99"),
    ],
)
def test_bad_training_input_is_a_field_error(
    swept: tuple[httpx.Client, ParameterSweep], data: dict[str, str], field: str, text: str
) -> None:
    client, sweep = swept
    page = _train(client, sweep, **data)
    assert page.status_code == 400
    assert text in invalid_field(page, field)
    assert not ModelVersion.objects.exists()


def test_a_service_refusal_is_shown_beside_the_field(
    swept: tuple[httpx.Client, ParameterSweep],
) -> None:
    client, sweep = swept
    _train(client, sweep)
    page = _train(client, sweep, target="n_particles")  # the same name, another target
    assert page.status_code == 400
    assert "a new version must keep them" in page.text
    assert ModelVersion.objects.count() == 1


def test_bad_curve_choices_are_400s(swept: tuple[httpx.Client, ParameterSweep]) -> None:
    client, sweep = swept
    _train(client, sweep)
    version = ModelVersion.objects.get()
    not_ready = client.get(f"/surrogates/{version.model_id}/curve.png")
    assert not_ready.status_code == 404  # no current version yet: nothing to draw
    services.version_train_run(version.pk)
    base = f"/surrogates/{version.model_id}"
    for query, named in (("along=nope", "along"), ("n_particles=x", "held.n_particles")):
        plot = client.get(f"{base}/curve.png?{query}")
        assert plot.status_code == 400
        assert named in plot.text
        assert client.get(f"{base}/?{query}").status_code == 400


def _adaptive(
    client: httpx.Client, sweep: ParameterSweep, accuracy: str, budget: str
) -> httpx.Response:
    fields = {"target": "radius_of_gyration", "accuracy": accuracy, "budget": budget}
    return post_form(
        client,
        f"/sweeps/{sweep.pk}/adaptive/",
        {f"adaptive-{name}": value for name, value in fields.items()},
        form_on=f"/sweeps/{sweep.pk}/",
    )


def test_start_an_adaptive_sweep_and_its_bad_input(
    swept: tuple[httpx.Client, ParameterSweep],
) -> None:
    client, sweep = swept
    bad = _adaptive(client, sweep, "-1", "12")
    assert bad.status_code == 400
    assert "A positive number" in invalid_field(bad, "adaptive-accuracy")
    assert not AuditLog.objects.filter(action="surrogate.adaptive_start").exists()
    bad = _adaptive(client, sweep, "0.5", "2")
    assert bad.status_code == 400
    assert "between 3 and" in invalid_field(bad, "adaptive-budget")
    started = _adaptive(client, sweep, "0.5", "12")
    assert started.status_code == 200
    assert "Adaptive study started" in started.text
    entry = AuditLog.objects.get(action="surrogate.adaptive_start")
    assert entry.details["axes"] == {"sticking_probability": SMALL[0], "n_particles": SMALL[1]}
    assert entry.details["budget"] == 12


def test_a_viewer_sees_the_models_but_cannot_train(asgi_server: ServedApp) -> None:
    owner = member(Role.MEMBER)
    organization = owner.memberships.get().organization
    sweep = measured_sweep(ProjectFactory(organization=organization), values=SMALL)
    version = services.surrogate_train(
        _actor(owner), project_id=sweep.project_id, name="rg", target="radius_of_gyration",
        inputs=["sticking_probability", "n_particles"], sweep_ids=[sweep.pk],
    )  # fmt: skip
    viewer = member(Role.VIEWER, organization)
    with browser_session(asgi_server.url, viewer.username, PASSWORD) as client:
        page = client.get(f"/sweeps/{sweep.pk}/")
        assert "rg" in page.text
        assert "Train the surrogate" not in page.text
        assert "Start the adaptive sweep" not in page.text
        assert client.get(f"/surrogates/{version.model_id}/").status_code == 200
        token = _any_csrf(client)
        for path, data in (
            (f"/sweeps/{sweep.pk}/surrogates/",
             {"name": "x", "target": "radius_of_gyration", "level": "0.9"}),
            (f"/sweeps/{sweep.pk}/adaptive/",
             {"adaptive-target": "radius_of_gyration", "adaptive-accuracy": "1",
              "adaptive-budget": "5"}),
        ):  # fmt: skip
            refused = client.post(
                path,
                data={**data, "csrfmiddlewaretoken": token},
                headers={"Referer": f"{client.base_url}/sweeps/{sweep.pk}/"},
            )
            assert refused.status_code == 403
    assert SurrogateModel.objects.count() == 1
    assert ModelVersion.objects.get().status == VersionStatus.QUEUED


def test_another_organisations_surrogate_is_a_404(asgi_server: ServedApp) -> None:
    owner = member(Role.MEMBER)
    sweep = measured_sweep(
        ProjectFactory(organization=owner.memberships.get().organization), values=SMALL
    )
    version = services.surrogate_train(
        _actor(owner), project_id=sweep.project_id, name="rg", target="radius_of_gyration",
        inputs=["sticking_probability", "n_particles"], sweep_ids=[sweep.pk],
    )  # fmt: skip
    services.version_train_run(version.pk)
    stranger = member(Role.OWNER)
    with browser_session(asgi_server.url, stranger.username, PASSWORD) as client:
        for path in (
            f"/surrogates/{version.model_id}/",
            f"/surrogates/{version.model_id}/curve.png",
        ):
            assert client.get(path).status_code == 404
        token = _any_csrf(client)
        refused = client.post(
            f"/sweeps/{sweep.pk}/surrogates/",
            data={"name": "x", "target": "radius_of_gyration", "level": "0.9",
                  "csrfmiddlewaretoken": token},
            headers={"Referer": f"{client.base_url}/"},
        )  # fmt: skip
        assert refused.status_code == 404
    assert not AuditLog.objects.filter(action="surrogate.predict").exists()


def _actor(user: Any) -> Actor:
    return actor_for(user, source=Source.WEB)


def _any_csrf(client: httpx.Client) -> str:
    """A token from the sign-out form every page carries."""
    return csrf_token(client.get("/"))

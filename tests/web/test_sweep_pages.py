"""Sweep pages over a real server: the form (axes, base parameters, the service's errors
beside the fields), the sweep's page with its table of means and spreads, the plot, the
CSV, and cancelling the whole sweep."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.simulations.execution import execute
from simlab.simulations.models import ParameterSweep, Simulation, Status
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import browser_session, post_form
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(asgi_server: ServedApp) -> Iterator[tuple[httpx.Client, Any]]:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        yield client, project


def test_a_two_parameter_sweep_from_the_form_with_its_table_plot_and_csv(
    signed_in: tuple[httpx.Client, Any],
) -> None:
    client, project = signed_in
    new = f"/projects/{project.pk}/sweeps/new/?algorithm=random_walk"
    page = post_form(
        client,
        new,
        {"algorithm": "random_walk", "name": "steps x walkers",
         "axis_0_parameter": "steps", "axis_0_values": "100, 400",
         "axis_1_parameter": "walkers", "axis_1_values": "10,20",
         "seeds_per_point": "3", "parameters.dimension": "2"},
        form_on=new,
    )  # fmt: skip
    sweep = ParameterSweep.objects.get(project=project)
    assert page.url.path == f"/sweeps/{sweep.pk}/"
    assert (sweep.total, sweep.name) == (12, "steps x walkers")
    children = list(sweep.simulations.order_by("id"))
    assert {c.parameters["dimension"] for c in children} == {2}
    for child in children:
        execute(child.pk)
    assert set(sweep.simulations.values_list("status", flat=True)) == {Status.SUCCEEDED}

    page = client.get(f"/sweeps/{sweep.pk}/?metric=diffusion_exponent")
    assert "12 of 12 runs succeeded" in page.text
    assert page.text.count("3/3") == 4  # four points, three seeds each
    plot = client.get(f"/sweeps/{sweep.pk}/plot.png?metric=diffusion_exponent")
    assert plot.headers["content-type"] == "image/png"
    assert plot.content[:8] == b"\x89PNG\r\n\x1a\n"

    rows = list(csv.reader(io.StringIO(client.get(f"/sweeps/{sweep.pk}/results.csv").text)))
    header = rows[0]
    assert header[:4] == ["steps", "walkers", "simulations", "completed"]
    assert "diffusion_exponent" in header
    assert "diffusion_exponent_std" in header
    spread = [float(r[header.index("diffusion_exponent_std")]) for r in rows[1:]]
    assert len(spread) == 4
    assert all(s > 0 for s in spread)  # three different seeds per point


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"axis_0_parameter": "steps", "axis_0_values": "100, -5"}, "axis_0_values", "-5"),
        ({"axis_0_parameter": "steps", "axis_0_values": ""}, "axis_0_values", "required"),
        ({"axis_0_parameter": "", "axis_0_values": "1"}, "axis_0_parameter", "required"),
        ({"axis_0_parameter": "steps", "axis_0_values": "100", "seeds_per_point": "0"},
         "seeds_per_point", "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_sweep_input_is_a_field_error(
    signed_in: tuple[httpx.Client, Any], data: dict[str, str], field: str, text: str
) -> None:
    client, project = signed_in
    new = f"/projects/{project.pk}/sweeps/new/?algorithm=random_walk"
    page = post_form(
        client, new, {"algorithm": "random_walk", "seeds_per_point": "1", **data}, form_on=new
    )
    assert page.status_code == 400
    block = re.search(
        rf'<div class="field invalid">\s*<label for="id_{field}">.*?</div>', page.text, re.S
    )
    assert block, page.text[:3000]
    assert text in block.group(0)
    assert not ParameterSweep.objects.exists()


def test_cancelling_the_whole_sweep(signed_in: tuple[httpx.Client, Any]) -> None:
    client, project = signed_in
    new = f"/projects/{project.pk}/sweeps/new/?algorithm=eden"
    post_form(
        client,
        new,
        {"algorithm": "eden", "axis_0_parameter": "n_particles", "axis_0_values": "100, 200, 300",
         "seeds_per_point": "1"},
        form_on=new,
    )  # fmt: skip
    sweep = ParameterSweep.objects.get(project=project)
    page = f"/sweeps/{sweep.pk}/"
    done = post_form(client, f"/sweeps/{sweep.pk}/cancel/", {}, form_on=page)
    assert "Cancelled 3 queued run(s)" in done.text
    assert set(Simulation.objects.filter(sweep=sweep).values_list("status", flat=True)) == {
        Status.CANCELLED
    }
    assert AuditLog.objects.get(action="sweep.cancel").source == "web"

"""Choosing where runs go in the new-run and new-sweep forms ("Run on": this SimLab or a
registered service), and where they went on the run page, the runs list and the sweep
page. The services are a scripted plain WES server on loopback, checked for real."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from simlab.audit.models import AuditLog
from simlab.registry.models import Service
from simlab.registry.scripted import Served
from simlab.simulations.models import ParameterSweep, RemoteRun, Simulation
from tests.factories import OrganizationFactory
from tests.http import invalid_field, post_form
from tests.registry.factories import registered, wes_service

pytestmark = pytest.mark.django_db(transaction=True)

RUN = {"algorithm": "dla", "parameters.n_particles": "500", "parameters.dimension": "2",
       "parameters.lattice": "off"}  # fmt: skip


def _sent_to(
    fake_wes: Served, name: str, client: httpx.Client, project: Any, form: str, data: Any
) -> tuple[Service, httpx.Response]:
    """Service `name` registered in the project's organisation, and the new-run or
    new-sweep form (`form`) posted with it chosen under "Run on"."""
    service = wes_service(fake_wes.url, name, organization=project.organization)
    path = f"/projects/{project.pk}/{form}/new/?algorithm=dla"
    return service, post_form(client, path, {**data, "service_id": str(service.pk)})


def _open_breaker(service: Service) -> None:
    service.state.breaker_until = timezone.now() + timedelta(minutes=5)
    service.state.save(update_fields=["breaker_until"])


def _options(page: httpx.Response) -> dict[str, str]:
    """The "Run on" choice's options: value -> the option's tag and label."""
    select = re.search(r'<select name="service_id".*?</select>', page.text, re.S)
    assert select, page.text[-3000:]
    return {
        value: f"{attrs} {label}"
        for value, attrs, label in re.findall(
            r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', select.group(0)
        )
    }


def test_the_run_form_offers_this_simlab_and_the_services_the_user_may_use(
    signed_in: tuple[httpx.Client, Any, Any], fake_wes: Served
) -> None:
    client, user, project = signed_in
    organization = user.memberships.get().organization
    ours = wes_service(fake_wes.url, "ours", organization=organization)
    shared = wes_service(fake_wes.url, "shared")
    # Never seen up:
    down = wes_service(fake_wes.url, "down", organization=organization, checked=False)
    broken = wes_service(fake_wes.url, "broken", organization=organization)
    _open_breaker(broken)
    foreign = wes_service(fake_wes.url, "foreign", organization=OrganizationFactory())
    plain = registered(f"{fake_wes.url}/health", organization=organization, kind="http")
    for path in (f"/projects/{project.pk}/runs/new/", f"/projects/{project.pk}/sweeps/new/"):
        options = _options(client.get(path))
        assert "This SimLab" in options[""]
        assert "selected" in options[""]  # the default
        assert "ours (ga4gh-wes)" in options[str(ours.pk)]
        assert "shared" in options[str(shared.pk)]
        for unusable, why in ((down, "status unknown"), (broken, "its circuit breaker is open")):
            assert "disabled" in options[str(unusable.pk)], path
            assert f"unavailable, {why}" in options[str(unusable.pk)]
        assert "disabled" not in options[str(ours.pk)]
        assert str(foreign.pk) not in options  # another organisation's
        assert str(plain.pk) not in options  # runs no simulations


def test_a_run_sent_from_the_form_is_linked_to_its_service_and_shown_there(
    signed_in: tuple[httpx.Client, Any, Any], fake_wes: Served
) -> None:
    client, _, project = signed_in
    service, done = _sent_to(fake_wes, "site-b", client, project, "runs", RUN)
    assert done.status_code == 200, done.text[-2000:]
    run = Simulation.objects.get(project=project)
    assert done.url.path == f"/runs/{run.pk}/"
    link = RemoteRun.objects.get(simulation=run)
    assert link.service_id == service.pk
    created = AuditLog.objects.get(action="simulation.create", object_id=str(run.pk))
    assert (created.source, created.details["service_id"]) == ("web", service.pk)
    assert "on site-b · not sent yet" in done.text
    # Sent and running there: the run page, and its row in the list, say so.
    RemoteRun.objects.filter(pk=run.pk).update(remote_id="run-77", remote_state="RUNNING")
    page = client.get(f"/runs/{run.pk}/")
    assert "on site-b · running" in page.text
    assert "run-77" in page.text
    assert f'href="/services/{service.pk}/"' in page.text
    listed = client.get(f"/projects/{project.pk}/runs/")
    assert "on site-b · running" in listed.text
    # A local run shows no badge.
    local = post_form(client, f"/projects/{project.pk}/runs/new/?algorithm=dla", RUN)
    assert local.status_code == 200
    assert "on site-b" not in local.text
    assert not RemoteRun.objects.filter(simulation__project=project).exclude(pk=run.pk).exists()


def test_an_unusable_or_foreign_service_is_refused_beside_the_choice(
    signed_in: tuple[httpx.Client, Any, Any], fake_wes: Served
) -> None:
    client, _, project = signed_in
    service = wes_service(fake_wes.url, "flaky", organization=project.organization)
    path = f"/projects/{project.pk}/runs/new/?algorithm=dla"
    form = client.get(path)  # offered while it was up
    _open_breaker(service)
    refused = post_form(client, path, {**RUN, "service_id": str(service.pk)}, form_on=path)
    assert form.status_code == 200
    assert refused.status_code == 400
    assert "not usable now (its circuit breaker is open)" in invalid_field(refused, "service_id")
    foreign = wes_service(fake_wes.url, "theirs", organization=OrganizationFactory())
    refused = post_form(client, path, {**RUN, "service_id": str(foreign.pk)})
    assert refused.status_code == 400
    assert "valid choice" in invalid_field(refused, "service_id")
    assert not Simulation.objects.filter(project=project).exists()


def test_a_sweep_sent_from_the_form_runs_its_children_there_and_its_page_says_so(
    signed_in: tuple[httpx.Client, Any, Any], fake_wes: Served
) -> None:
    client, _, project = signed_in
    axes = {"axis_0_parameter": "n_particles", "axis_0_values": "100, 200", "seeds_per_point": "1"}
    service, done = _sent_to(fake_wes, "sweeper", client, project, "sweeps", {**RUN, **axes})
    assert done.status_code == 200, done.text[-2000:]
    sweep = ParameterSweep.objects.get(project=project)
    assert done.url.path == f"/sweeps/{sweep.pk}/"
    children = list(sweep.simulations.values_list("pk", flat=True))
    assert RemoteRun.objects.filter(simulation_id__in=children, service=service).count() == 2
    assert done.text.count("on sweeper · not sent yet") == 2

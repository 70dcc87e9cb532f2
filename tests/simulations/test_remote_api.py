"""Where a run went, over REST: a simulation's `remote` (service, its run id and state
there, when it last answered), in the list without a query per row and in the detail."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.registry.models import Service
from simlab.registry.scripted import Served
from simlab.simulations import services
from simlab.simulations.api import simulation_data
from simlab.simulations.models import RemoteRun
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.registry.factories import wes_service

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"n_particles": 300}


def _create(user: Any, project_id: int, count: int, service: Service | None = None) -> list[int]:
    return [
        services.simulation_create(
            actor_for(user),
            project_id=project_id,
            algorithm="dla",
            parameters=SMALL,
            queue=False,
            service_id=service.pk if service is not None else None,
        ).pk
        for _ in range(count)
    ]


def _list_queries(client: Client, key: str, project_id: int) -> tuple[list[dict[str, Any]], int]:
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(
            f"/api/v1/projects/{project_id}/simulations/?page_size=100", headers={"X-API-Key": key}
        )
    assert answer.status_code == 200, answer.content
    return answer.json()["results"], len(queries.captured_queries)


def test_the_list_and_the_detail_say_where_each_run_went(
    fake_wes: Served, django_assert_max_num_queries: Any
) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    _, key = api_key_for(user, organization)
    b = wes_service(fake_wes.url, "b", organization=organization)
    c = wes_service(fake_wes.url, "c", organization=organization)
    client = Client()
    _create(user, project.pk, 1, b)
    _create(user, project.pk, 1)
    _list_queries(client, key, project.pk)  # the key's first use is recorded once
    _, few = _list_queries(client, key, project.pk)
    remote = _create(user, project.pk, 4, b) + _create(user, project.pk, 4, c)
    local = _create(user, project.pk, 4)
    now = timezone.now()
    RemoteRun.objects.filter(pk=remote[0]).update(
        remote_id="run-9", remote_state="RUNNING", last_contact_at=now
    )
    # Fourteen rows, ten remote on two services: as many queries as for two rows.
    with django_assert_max_num_queries(few):
        rows, many = _list_queries(client, key, project.pk)
    assert many == few
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == 14
    for pk in local:
        assert by_id[pk]["remote"] is None
    sent = by_id[remote[0]]["remote"]
    assert sent["service_id"] == b.pk
    assert sent["service_name"] == "b"
    assert (sent["remote_id"], sent["state"]) == ("run-9", "RUNNING")
    assert sent["last_sync_at"].startswith(now.strftime("%Y-%m-%dT%H:%M:%S"))
    unsent = by_id[remote[-1]]["remote"]
    assert (unsent["service_id"], unsent["service_name"]) == (c.pk, "c")
    assert (unsent["remote_id"], unsent["state"], unsent["last_sync_at"]) == (None, None, None)
    detail = client.get(f"/api/v1/simulations/{remote[0]}/", headers={"X-API-Key": key})
    assert detail.json()["remote"] == sent
    assert (
        client.get(f"/api/v1/simulations/{local[0]}/", headers={"X-API-Key": key}).json()["remote"]
        is None
    )


def test_a_created_run_says_where_it_goes_without_reading_it_back(fake_wes: Served) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    _, key = api_key_for(user, organization)
    service = wes_service(fake_wes.url, "d", organization=organization)
    body = {"algorithm": "dla", "parameters": SMALL, "queue": False}
    made = Client().post(
        f"/api/v1/projects/{project.pk}/simulations/",
        {**body, "service_id": service.pk},
        content_type="application/json",
        headers={"X-API-Key": key},
    )
    assert made.status_code == 201, made.content
    assert made.json()["remote"]["service_id"] == service.pk
    assert made.json()["remote"]["service_name"] == "d"
    simulation = services.simulation_create(
        actor_for(user), project_id=project.pk, algorithm="dla", parameters=SMALL,
        service_id=service.pk,
    )  # fmt: skip
    local = services.simulation_create(
        actor_for(user), project_id=project.pk, algorithm="dla", parameters=SMALL
    )
    simulation.created_by = local.created_by = user  # as the API sets it
    with CaptureQueriesContext(connection) as queries:
        data, plain = simulation_data(simulation), simulation_data(local)
    assert queries.captured_queries == []
    assert data["remote"]["service_name"] == "d"
    assert plain["remote"] is None

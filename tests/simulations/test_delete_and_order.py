"""Deleting simulations, sweeps, projects and API keys (audit rows stay), ordering lists,
and a sweep's children page by page: over REST, against the real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.core.files.storage import default_storage

from simlab.accounts.models import ApiKey, Role
from simlab.audit.models import AuditLog
from simlab.projects.models import Project
from simlab.simulations import services
from simlab.simulations.models import ParameterSweep, Simulation, Status
from tests.factories import PASSWORD, ProjectFactory, actor_for, api_key_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.privacy.factories import ModelVersionFactory
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def owner(asgi_server: ServedApp) -> tuple[Any, Project, dict[str, str]]:
    user = member(Role.OWNER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    return user, project, bearer(obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"])


def _runs(user: Any, project: Project, count: int) -> list[int]:
    return services.simulation_create_batch(
        actor_for(user),
        project_id=project.pk,
        specs=[services.SimulationSpec("dla", {"n_particles": 100}, seed=s) for s in range(count)],
        queue=False,
    )


def test_a_simulation_is_deleted_once_finished_and_its_audit_rows_stay(
    asgi_server: ServedApp, owner: tuple[Any, Project, dict[str, str]]
) -> None:
    user, project, headers = owner
    (pk,) = _runs(user, project, 1)
    url = f"{asgi_server.url}/api/v1/simulations/{pk}/"
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)
    assert_envelope(httpx.delete(url, headers=headers), 409, "simulations_active")
    Simulation.objects.filter(pk=pk).update(status=Status.SUCCEEDED)

    viewer = member(Role.VIEWER, organization=project.organization)
    viewer_headers = bearer(obtain_tokens(asgi_server.url, viewer.username, PASSWORD)["access"])
    assert_envelope(httpx.delete(url, headers=viewer_headers), 403)

    assert httpx.delete(url, headers=headers).status_code == 204
    assert not Simulation.objects.filter(pk=pk).exists()
    assert_envelope(httpx.get(url, headers=headers), 404)
    actions = set(AuditLog.objects.filter(object_id=str(pk)).values_list("action", flat=True))
    assert {"simulation.delete"} <= actions


def test_a_sweep_and_a_project_are_deleted_with_their_simulations(
    asgi_server: ServedApp, owner: tuple[Any, Project, dict[str, str]]
) -> None:
    user, project, headers = owner
    sweep = services.sweep_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        axes=[{"parameter": "n_particles", "values": [100, 200]}],
    )
    children = list(Simulation.objects.filter(sweep=sweep).values_list("pk", flat=True))
    sweep_url = f"{asgi_server.url}/api/v1/sweeps/{sweep.pk}/"
    child_url = f"{asgi_server.url}/api/v1/simulations/{children[0]}/"
    assert_envelope(httpx.delete(sweep_url, headers=headers), 409, "simulations_active")
    Simulation.objects.filter(sweep=sweep).update(status=Status.CANCELLED)
    assert_envelope(httpx.delete(child_url, headers=headers), 409, "part_of_sweep")
    assert httpx.delete(sweep_url, headers=headers).status_code == 204
    assert not ParameterSweep.objects.filter(pk=sweep.pk).exists()
    assert not Simulation.objects.filter(pk__in=children).exists()

    _runs(user, project, 2)
    model_file = ModelVersionFactory(project=project, artifact=b"weights").artifact.name
    assert default_storage.exists(model_file)
    project_url = f"{asgi_server.url}/api/v1/projects/{project.pk}/"
    assert httpx.delete(project_url, headers=headers).status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not default_storage.exists(model_file)  # a trained surrogate's file goes too
    assert AuditLog.objects.filter(action="project.delete", object_id=str(project.pk)).exists()
    assert AuditLog.objects.filter(action="sweep.delete", object_id=str(sweep.pk)).exists()


def test_an_api_key_is_deleted_and_stops_working(
    asgi_server: ServedApp, owner: tuple[Any, Project, dict[str, str]]
) -> None:
    user, project, headers = owner
    key, raw = api_key_for(user, project.organization)
    me = f"{asgi_server.url}/api/v1/me/"
    assert httpx.get(me, headers={"X-API-Key": raw}).status_code == 200
    deleted = httpx.delete(f"{asgi_server.url}/api/v1/api-keys/{key.pk}/", headers=headers)
    assert deleted.status_code == 204
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert_envelope(httpx.get(me, headers={"X-API-Key": raw}), 401)
    assert AuditLog.objects.filter(action="api_key.delete", object_id=str(key.pk)).exists()


def test_lists_follow_ordering_and_refuse_unknown_fields(
    asgi_server: ServedApp, owner: tuple[Any, Project, dict[str, str]]
) -> None:
    user, project, headers = owner
    ids = _runs(user, project, 4)
    base = f"{asgi_server.url}/api/v1/projects/{project.pk}/simulations/"
    newest = [s["id"] for s in httpx.get(base, headers=headers).json()["results"]]
    oldest = [
        s["id"]
        for s in httpx.get(base, params={"ordering": "created_at"}, headers=headers).json()[
            "results"
        ]
    ]
    assert newest == sorted(ids, reverse=True)
    assert oldest == sorted(ids)
    ProjectFactory(organization=project.organization, name="aaa first")
    names = [
        p["name"]
        for p in httpx.get(
            f"{asgi_server.url}/api/v1/projects/", params={"ordering": "name"}, headers=headers
        ).json()["results"]
    ]
    assert names == sorted(names)
    for path in ("projects/", f"projects/{project.pk}/simulations/", "api-keys/"):
        bad = httpx.get(
            f"{asgi_server.url}/api/v1/{path}", params={"ordering": "password"}, headers=headers
        )
        body = assert_envelope(bad, 400, "validation_error")
        assert "ordering" in body["error"]["details"]


def test_a_sweeps_children_come_page_by_page(
    asgi_server: ServedApp, owner: tuple[Any, Project, dict[str, str]]
) -> None:
    user, project, headers = owner
    sweep = services.sweep_create(
        actor_for(user),
        project_id=project.pk,
        algorithm="dla",
        axes=[{"parameter": "n_particles", "values": list(range(100, 230))}],
    )
    detail = httpx.get(f"{asgi_server.url}/api/v1/sweeps/{sweep.pk}/", headers=headers).json()
    assert len(detail["simulations"]) == 100
    assert detail["simulations_truncated"] is True
    seen: list[int] = []
    url: str | None = f"{asgi_server.url}{detail['simulations_url']}?page_size=50"
    while url:
        page = httpx.get(url, headers=headers).json()
        seen += [child["id"] for child in page["results"]]
        url = page["next"]
    assert seen == sorted(Simulation.objects.filter(sweep=sweep).values_list("pk", flat=True))
    assert len(seen) == 130

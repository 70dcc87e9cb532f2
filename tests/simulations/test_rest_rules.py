"""The REST door answers the service layer's refusals with the envelope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from simlab.simulations.models import Simulation
from tests.factories import PASSWORD, ProjectFactory, api_key_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def _client(server: ServedApp, role: Role = Role.MEMBER) -> tuple[httpx.Client, Any]:
    user = member(role)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(server.url, user.username, PASSWORD)["access"]
    return httpx.Client(base_url=server.url, headers=bearer(access), timeout=30), project


def test_viewer_gets_403_and_a_foreign_member_404(asgi_server: ServedApp) -> None:
    client, project = _client(asgi_server, Role.VIEWER)
    with client:
        refused = client.post(
            f"/api/v1/projects/{project.pk}/simulations/", json={"algorithm": "dla"}
        )
        assert_envelope(refused, 403, "permission_denied")
        assert client.get(f"/api/v1/projects/{project.pk}/simulations/").status_code == 200
    stranger, _ = _client(asgi_server, Role.OWNER)
    with stranger:
        base = f"/api/v1/projects/{project.pk}"
        axes = [{"parameter": "n_particles", "values": [10]}]
        for method, path, body in [
            ("GET", f"{base}/simulations/", None),
            ("POST", f"{base}/simulations/", {"algorithm": "dla"}),
            ("POST", f"{base}/simulations/batch/", {"simulations": [{"algorithm": "dla"}]}),
            ("POST", f"{base}/sweeps/", {"algorithm": "dla", "axes": axes}),
        ]:
            assert_envelope(stranger.request(method, path, json=body), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"algorithm": "dla", "parameters": {"n_particles": "lots"}}, "parameters.n_particles"),
        ({"algorithm": "dla", "parameters": {"n_particles": 10**9}}, "parameters.n_particles"),
        ({"algorithm": "dla", "parameters": {"wobble": 1}}, "parameters.wobble"),
        ({"algorithm": "nope"}, "algorithm"),
        ({"algorithm": "dla", "seed": -1}, "seed"),
        ({"parameters": {}}, "algorithm"),
    ],
)
def test_bad_parameter_is_400_naming_the_field(
    asgi_server: ServedApp, body: dict[str, Any], field: str
) -> None:
    client, project = _client(asgi_server)
    with client:
        response = client.post(f"/api/v1/projects/{project.pk}/simulations/", json=body)
    envelope = assert_envelope(response, 400, "validation_error")
    assert field in envelope["error"]["details"]
    assert field in envelope["error"]["message"]


def test_bad_batch_item_is_400_naming_its_index(asgi_server: ServedApp) -> None:
    client, project = _client(asgi_server)
    items: list[dict[str, Any]] = [{"algorithm": "dla", "parameters": {"n_particles": 10}}] * 4
    items.append({"algorithm": "dla", "parameters": {"dimension": 4}})
    with client:
        response = client.post(
            f"/api/v1/projects/{project.pk}/simulations/batch/", json={"simulations": items}
        )
        envelope = assert_envelope(response, 400, "validation_error")
        assert "simulations.4.parameters.dimension" in envelope["error"]["details"]
        missing = client.post(
            f"/api/v1/projects/{project.pk}/simulations/batch/", json={"simulations": [{}]}
        )
        assert "simulations.0.algorithm" in assert_envelope(missing, 400)["error"]["details"]
    assert not Simulation.objects.exists()


def test_quotas_are_429_and_400_envelopes(
    asgi_server: ServedApp, settings: SettingsWrapper
) -> None:
    settings.SIMLAB_MAX_BATCH_SIZE = 10
    settings.SIMLAB_MAX_ACTIVE_PER_USER = 12
    client, project = _client(asgi_server)
    item = {"algorithm": "eden", "parameters": {"n_particles": 10}}
    url = f"/api/v1/projects/{project.pk}/simulations/batch/"
    with client:
        too_big = client.post(url, json={"simulations": [item] * 11})
        assert_envelope(too_big, 400, "batch_too_large")
        assert client.post(url, json={"simulations": [item] * 10}).status_code == 201
        over = client.post(url, json={"simulations": [item] * 3})
        body = assert_envelope(over, 429, "active_quota_exceeded")
        assert body["error"]["details"]["limit"] == 12
    assert Simulation.objects.count() == 10


def test_batch_over_rest_with_an_api_key(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    _, raw = api_key_for(user, organization)
    items = [{"algorithm": "dla", "parameters": {"n_particles": 20}, "seed": s} for s in range(50)]
    response = httpx.post(
        f"{asgi_server.url}/api/v1/projects/{project.pk}/simulations/batch/",
        json={"simulations": items, "queue": False},
        headers=bearer(raw),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 50
    assert body["status"] == "CREATED"
    stored = Simulation.objects.filter(pk__in=body["ids"]).order_by("pk")
    assert [s.seed for s in stored] == list(range(50))
    listed = httpx.get(
        f"{asgi_server.url}/api/v1/projects/{project.pk}/simulations/",
        params={"status": "CREATED", "page_size": 20},
        headers=bearer(raw),
    ).json()
    assert len(listed["results"]) == 20
    assert listed["next"]
    follow = httpx.get(listed["next"], headers=bearer(raw)).json()
    assert {s["id"] for s in follow["results"]}.isdisjoint({s["id"] for s in listed["results"]})


def test_a_read_only_key_cannot_create(asgi_server: ServedApp) -> None:
    user = member(Role.OWNER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    _, raw = api_key_for(user, organization, scopes=["read"])
    response = httpx.post(
        f"{asgi_server.url}/api/v1/projects/{project.pk}/simulations/",
        json={"algorithm": "dla"},
        headers={"X-API-Key": raw},
    )
    assert_envelope(response, 403, "missing_scope")


def test_algorithms_list_json_schemas(asgi_server: ServedApp) -> None:
    client, _ = _client(asgi_server)
    with client:
        algorithms = {a["name"]: a for a in client.get("/api/v1/algorithms/").json()}
        assert {"dla", "eden", "ising", "percolation"} <= set(algorithms)
        schema = algorithms["dla"]["parameters_schema"]
        assert schema["properties"]["n_particles"]["description"]
        assert client.get("/api/v1/algorithms/dla/").json()["name"] == "dla"
        assert_envelope(client.get("/api/v1/algorithms/nope/"), 404)


def test_tags_and_note_are_set_with_patch_and_bad_tags_name_the_field(
    asgi_server: ServedApp,
) -> None:
    client, project = _client(asgi_server)
    with client:
        created = client.post(
            f"/api/v1/projects/{project.pk}/simulations/", json={"algorithm": "eden"}
        )
        simulation_id = created.json()["id"]
        patched = client.patch(
            f"/api/v1/simulations/{simulation_id}/", json={"tags": ["A", "b"], "note": "n"}
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["tags"], patched.json()["note"]) == (["a", "b"], "n")
        only_note = client.patch(f"/api/v1/simulations/{simulation_id}/", json={"note": "m"})
        assert only_note.json()["tags"] == ["a", "b"]  # what is not sent stays
        bad = client.patch(f"/api/v1/simulations/{simulation_id}/", json={"tags": ["a,b"]})
        assert "tags" in assert_envelope(bad, 400, "validation_error")["error"]["details"]

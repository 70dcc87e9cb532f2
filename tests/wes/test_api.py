"""SimLab as a GA4GH WES service, over HTTP against the real platform server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.simulations import execution
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.http import bearer
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)

WES = "/ga4gh/wes/v1"
SMALL_DLA = {"n_particles": 200}


def _form(**fields: Any) -> dict[str, tuple[None, str]]:
    """A file-less multipart/form-data body, as WES clients send RunRequests."""
    base = {"workflow_type": "SimLab", "workflow_type_version": "1.0", "workflow_url": "dla"}
    merged = {**base, **fields}
    return {
        name: (None, value if isinstance(value, str) else json.dumps(value))
        for name, value in merged.items()
    }


def _error(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    """WES's ErrorResponse ({msg, status_code}) inside SimLab's envelope, naming `field`."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == status
    assert isinstance(body["msg"], str)
    assert body["msg"] == body["error"]["message"]
    assert field in body["msg"], body
    assert field in body["error"]["details"], body
    return body


@pytest.fixture
def client(asgi_server: ServedApp, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{asgi_server.url}{WES}", headers=bearer(token), timeout=30)


@pytest.fixture
def project(user: Any) -> Any:
    return ProjectFactory(organization=user.memberships.get().organization)


def test_service_info_names_simlab_workflows_and_counts_my_runs(
    client: httpx.Client, asgi_server: ServedApp, user: Any, project: Any
) -> None:
    simulation_create_batch(
        actor_for(user), project_id=project.pk, specs=[SimulationSpec("dla", SMALL_DLA)] * 2
    )
    info = client.get("/service-info").json()
    assert "1.0" in info["workflow_type_versions"]["SimLab"]["workflow_type_version"]
    assert "1.1.0" in info["supported_wes_versions"]
    assert {p["name"] for p in info["default_workflow_engine_parameters"]} >= {"seed"}
    assert info["system_state_counts"]["QUEUED"] == 2
    assert info["system_state_counts"]["COMPLETE"] == 0
    assert "dla" in info["tags"]["algorithms"].split(",")
    assert info["auth_instructions_url"].startswith("http")
    # Anyone may ask what the service is; counts are per caller.
    anonymous = httpx.get(f"{asgi_server.url}{WES}/service-info").json()
    assert anonymous["system_state_counts"] == {}


def test_a_run_submitted_as_multipart_is_a_queued_audited_simulation(
    client: httpx.Client, user: Any, project: Any
) -> None:
    response = client.post(
        "/runs",
        files=_form(
            workflow_params=SMALL_DLA,
            tags={"project": str(project.pk), "purpose": "demo"},
            workflow_engine_parameters={"seed": "7"},
        ),
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    simulation = Simulation.objects.get(pk=int(run_id))
    assert (simulation.project_id, simulation.algorithm, simulation.seed) == (project.pk, "dla", 7)
    assert simulation.parameters["n_particles"] == 200
    assert AuditLog.objects.filter(action="simulation.create", object_id=run_id).exists()

    log = client.get(f"/runs/{run_id}").json()
    assert log["state"] == "QUEUED"
    assert log["request"]["workflow_url"] == "dla"
    assert log["request"]["tags"] == {"project": str(project.pk), "purpose": "demo"}
    assert log["request"]["workflow_engine_parameters"] == {"seed": "7"}
    assert log["request"]["workflow_params"]["n_particles"] == 200
    assert log["task_logs"] == []
    assert client.get(f"/runs/{run_id}/status").json() == {"run_id": run_id, "state": "QUEUED"}

    assert client.post(f"/runs/{run_id}/cancel").json() == {"run_id": run_id}
    assert client.get(f"/runs/{run_id}/status").json()["state"] == "CANCELED"
    assert AuditLog.objects.filter(action="simulation.cancel", object_id=run_id).exists()
    # Cancelling a finished run changes nothing and says so the same way.
    assert client.post(f"/runs/{run_id}/cancel").status_code == 200


def test_a_json_body_and_an_api_key_work_too(
    asgi_server: ServedApp, user: Any, project: Any
) -> None:
    _, raw = api_key_for(user, project.organization)
    response = httpx.post(
        f"{asgi_server.url}{WES}/runs",
        headers={"X-API-Key": raw},
        json={
            "workflow_type": "SimLab",
            "workflow_url": "simlab:dla",
            "workflow_params": SMALL_DLA,
        },
    )
    assert response.status_code == 200, response.text
    simulation = Simulation.objects.get(pk=int(response.json()["run_id"]))
    assert simulation.project_id == project.pk  # the caller's first project by default
    assert simulation.algorithm == "dla"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"workflow_params": {"n_particles": -5}}, "workflow_params.n_particles"),
        ({"workflow_params": "{not json"}, "workflow_params"),
        ({"workflow_params": [1, 2]}, "workflow_params"),
        ({"workflow_url": "no-such-model"}, "workflow_url"),
        ({"workflow_type": "CWL"}, "workflow_type"),
        ({"workflow_type_version": "9.9"}, "workflow_type_version"),
        ({"tags": {"project": "x"}}, "tags.project"),
        ({"workflow_engine_parameters": {"seed": "-1"}}, "workflow_engine_parameters.seed"),
        ({"workflow_engine_parameters": {"cores": "8"}}, "workflow_engine_parameters.cores"),
        (
            {"workflow_engine_parameters": {"callback_url": "ftp://x"}},
            "workflow_engine_parameters.callback_url",
        ),
        ({"workflow_attachment": "main.cwl"}, "workflow_attachment"),
        ({"workflow_params": '{"n_particles": NaN}'}, "workflow_params"),
        ({"workflow_params": '{"a": "\\ud800"}'}, "workflow_params"),
        ({"tags": {"note": "a\u0000b"}}, "tags.note"),
        ({"tags": {"note": {"nested": 1}}}, "tags.note"),
        ({"callback_url": "http://x.org/" + "a" * 300}, "callback_url"),
        (
            {"workflow_engine_parameters": {"seed": "99999999999999999999"}},
            "workflow_engine_parameters.seed",
        ),
        (
            {"workflow_engine_parameters": {"seed": "9999999999999999999"}},
            "workflow_engine_parameters.seed",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: httpx.Client, project: Any, fields: dict[str, Any], field: str
) -> None:
    _error(client.post("/runs", files=_form(**fields)), 400, field)
    assert not Simulation.objects.exists()


def test_another_organisations_run_is_404_and_a_viewer_cannot_submit(
    client: httpx.Client, asgi_server: ServedApp, user: Any, project: Any
) -> None:
    stranger = member()
    theirs = ProjectFactory(organization=stranger.memberships.get().organization)
    (foreign,) = simulation_create_batch(
        actor_for(stranger), project_id=theirs.pk, specs=[SimulationSpec("dla", SMALL_DLA)]
    )
    for method, path in [
        ("GET", f"/runs/{foreign}"),
        ("GET", f"/runs/{foreign}/status"),
        ("GET", f"/runs/{foreign}/tasks"),
        ("POST", f"/runs/{foreign}/cancel"),
        ("GET", "/runs/not-a-run"),
    ]:
        assert client.request(method, path).status_code == 404, path
    into_theirs = client.post("/runs", files=_form(tags={"project": str(theirs.pk)}))
    assert into_theirs.status_code == 404
    assert into_theirs.json()["msg"] == "No such project."
    assert client.get("/runs").json()["runs"] == []
    assert Simulation.objects.get(pk=foreign).status == Status.QUEUED

    viewer = member(Role.VIEWER, organization=project.organization)
    _, raw = api_key_for(viewer, project.organization)
    refused = httpx.post(f"{asgi_server.url}{WES}/runs", headers={"X-API-Key": raw}, files=_form())
    assert refused.status_code == 403, refused.text
    assert refused.json()["msg"]
    unauthenticated = httpx.get(f"{asgi_server.url}{WES}/runs")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["status_code"] == 401


def test_runs_are_listed_in_pages_and_filtered(
    client: httpx.Client, user: Any, project: Any
) -> None:
    other = ProjectFactory(organization=project.organization)
    actor = actor_for(user)
    ids = simulation_create_batch(
        actor, project_id=project.pk, specs=[SimulationSpec("dla", SMALL_DLA)] * 3
    )
    (elsewhere,) = simulation_create_batch(
        actor, project_id=other.pk, specs=[SimulationSpec("eden", {})]
    )
    Simulation.objects.filter(pk=ids[0]).update(status=Status.SUCCEEDED)

    seen: list[str] = []
    token = ""
    while True:
        page = client.get("/runs", params={"page_size": 2, "page_token": token}).json()
        assert len(page["runs"]) <= 2
        seen += [run["run_id"] for run in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [str(pk) for pk in sorted([*ids, elsewhere], reverse=True)]

    def listed(**params: Any) -> set[int]:
        response = client.get("/runs", params=params)
        assert response.status_code == 200, response.text
        return {int(run["run_id"]) for run in response.json()["runs"]}

    assert listed(state="COMPLETE") == {ids[0]}
    assert listed(state="QUEUED") == {ids[1], ids[2], elsewhere}
    assert listed(state="RUNNING") == set()
    Simulation.objects.filter(pk=ids[1]).update(
        status=Status.RUNNING, phase="compiling", attempts=1
    )
    assert listed(state="INITIALIZING") == {ids[1]}
    Simulation.objects.filter(pk=ids[1]).update(phase="running")
    assert listed(state="RUNNING") == {ids[1]}
    assert client.post(f"/runs/{ids[1]}/cancel").status_code == 200  # asked to stop
    assert client.get(f"/runs/{ids[1]}/status").json()["state"] == "CANCELING"
    assert listed(state="CANCELING") == {ids[1]}
    assert listed(state="RUNNING") == set()
    Simulation.objects.filter(pk=ids[1]).update(status=Status.QUEUED, cancel_requested=False)
    assert listed(project=other.pk) == {elsewhere}
    assert listed(algorithm="eden") == {elsewhere}
    assert listed(created_after="2999-01-01T00:00:00Z") == set()
    _error(client.get("/runs", params={"state": "DONE"}), 400, "state")
    _error(client.get("/runs", params={"page_token": "garbage"}), 400, "page_token")


def test_a_finished_run_shows_its_times_outputs_and_task(
    client: httpx.Client, project: Any
) -> None:
    run_id = client.post(
        "/runs", files=_form(workflow_params=SMALL_DLA, tags={"project": str(project.pk)})
    ).json()["run_id"]
    assert execution.execute(int(run_id)) == Status.SUCCEEDED

    log = client.get(f"/runs/{run_id}").json()
    assert log["state"] == "COMPLETE"
    assert log["run_log"]["exit_code"] == 0
    assert log["run_log"]["start_time"] <= log["run_log"]["end_time"]
    assert log["outputs"]["metrics"]["n_particles"] == 200
    png = log["outputs"]["links"]["png"]
    assert png.startswith("http")
    assert client.get(png).headers["content-type"] == "image/png"
    (task,) = client.get(f"/runs/{run_id}/tasks").json()["task_logs"]
    assert task["id"] == f"{run_id}.1"
    assert task["exit_code"] == 0


def test_every_credential_of_the_rest_api_opens_it(
    asgi_server: ServedApp, user: Any, project: Any
) -> None:
    from tests.factories import PASSWORD
    from tests.http import browser_session

    _, raw = api_key_for(user, project.organization, scopes=["read"])
    as_bearer = httpx.get(f"{asgi_server.url}{WES}/runs", headers=bearer(raw))
    assert as_bearer.status_code == 200, as_bearer.text
    # A read-only key may look but not run.
    refused = httpx.post(f"{asgi_server.url}{WES}/runs", headers=bearer(raw), files=_form())
    assert refused.status_code == 403, refused.text
    with browser_session(asgi_server.url, user.username, PASSWORD) as browser:
        assert browser.get(f"{WES}/runs").status_code == 200


def test_a_submit_past_the_quota_is_refused_as_every_door_refuses_it(
    client: httpx.Client, project: Any, settings: Any
) -> None:
    settings.SIMLAB_MAX_ACTIVE_PER_USER = 1
    assert client.post("/runs", files=_form(workflow_params=SMALL_DLA)).status_code == 200
    refused = client.post("/runs", files=_form(workflow_params=SMALL_DLA))
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "active_quota_exceeded"
    assert refused.json()["msg"]
    assert Simulation.objects.count() == 1

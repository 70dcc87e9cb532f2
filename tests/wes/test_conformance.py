"""schemathesis against SimLab's WES API: responses checked against the GA4GH WES
specification as the `wes-service` package ships it (loaded from the installed package,
never a copy), and against SimLab's own OpenAPI document of the WES routes, which
documents the 1.1 additions (filters, tasks, JSON bodies, callbacks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from simlab.simulations import execution
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from tests.api_contract.test_openapi_conformance import _schemathesis
from tests.factories import ProjectFactory, actor_for
from tests.http import bearer
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

WES = "/ga4gh/wes/v1"


def shipped_spec() -> Path:
    """The WES OpenAPI document inside the installed `wes-service` package (found without
    importing it: its server needs nothing here)."""
    found = importlib.util.find_spec("wes_service")
    assert found is not None, "wes-service is installed"
    assert found.submodule_search_locations
    (package,) = found.submodule_search_locations
    return Path(package) / "openapi" / "workflow_execution_service.swagger.yaml"


def test_the_shipped_spec_is_the_ga4gh_wes_one() -> None:
    spec: dict[str, Any] = yaml.safe_load(shipped_spec().read_text())
    assert spec["info"]["title"] == "Workflow Execution Service"
    assert spec["basePath"] == WES
    assert {"/service-info", "/runs", "/runs/{run_id}", "/runs/{run_id}/status"} <= set(
        spec["paths"]
    )


@pytest.mark.slow
def test_the_wes_api_answers_as_the_ga4gh_spec_says(
    asgi_server: ServedApp, token: str, user: Any, tmp_path: Path
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    # A finished run for the run_id operations: their answers are checked on a real RunLog.
    (run_id,) = simulation_create_batch(
        actor_for(user), project_id=project.pk, specs=[SimulationSpec("dla", {"n_particles": 200})]
    )
    assert execution.execute(run_id) == Status.SUCCEEDED
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.run_id" = "{run_id}"\n')
    output = _schemathesis(
        str(shipped_spec()),
        f"{asgi_server.url}{WES}",
        token,
        tmp_path,
        "--config-file",
        str(config),
    )
    assert "Open API 2.0" in output  # what the package ships: WES 1.0.0's Swagger document
    assert "Missing test data" not in output  # run_id operations met the run, not 404s


@pytest.mark.slow
def test_the_wes_api_answers_as_its_own_schema_says(
    asgi_server: ServedApp, token: str, user: Any, tmp_path: Path
) -> None:
    ProjectFactory(organization=user.memberships.get().organization)
    document = f"{asgi_server.url}{WES}/openapi.json"
    output = _schemathesis(document, asgi_server.url, token, tmp_path)
    assert "7 selected" in output  # the spec's six operations and 1.1's tasks


def _validator(spec: dict[str, Any], definition: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]}
    )


def test_runs_in_every_state_match_the_shipped_definitions(
    asgi_server: ServedApp, token: str, user: Any
) -> None:
    """The fuzzers mostly meet unknown run ids; here real runs (queued, running, finished,
    cancelled, failed) and real errors are checked against the spec's definitions."""
    spec: dict[str, Any] = yaml.safe_load(shipped_spec().read_text())
    project = ProjectFactory(organization=user.memberships.get().organization)
    client = httpx.Client(base_url=f"{asgi_server.url}{WES}", headers=bearer(token), timeout=60)
    form = {
        "workflow_type": (None, "SimLab"),
        "workflow_url": (None, "dla"),
        "workflow_params": (None, '{"n_particles": 200}'),
        "tags": (None, f'{{"project": "{project.pk}"}}'),
    }
    ids = [client.post("/runs", files=form).json()["run_id"] for _ in range(5)]
    assert execution.execute(int(ids[0])) == Status.SUCCEEDED
    client.post(f"/runs/{ids[1]}/cancel")
    Simulation.objects.filter(pk=int(ids[2])).update(status=Status.RUNNING, attempts=1)
    Simulation.objects.filter(pk=int(ids[3])).update(
        status=Status.FAILED, attempts=1, error_message="ValueError: boom"
    )

    checks = [("/service-info", "ServiceInfo"), ("/runs?page_size=2", "RunListResponse")]
    for run_id in ids:
        checks += [(f"/runs/{run_id}", "RunLog"), (f"/runs/{run_id}/status", "RunStatus")]
    for path, definition in checks:
        response = client.get(path)
        assert response.status_code == 200, response.text
        _validator(spec, definition).validate(response.json())
    states = {client.get(f"/runs/{run_id}/status").json()["state"] for run_id in ids}
    assert states == {"COMPLETE", "CANCELED", "RUNNING", "EXECUTOR_ERROR", "QUEUED"}
    _validator(spec, "RunId").validate(client.post(f"/runs/{ids[4]}/cancel").json())
    for response in [client.get("/runs/0"), client.post("/runs", files={"x": (None, "")})]:
        assert response.status_code in (400, 404)
        _validator(spec, "ErrorResponse").validate(response.json())


def test_simlabs_own_document_shows_the_additions(asgi_server: ServedApp) -> None:
    for url in (f"{WES}/openapi.json", "/api/v1/schema/?format=json"):
        document = httpx.get(f"{asgi_server.url}{url}").json()
        runs = document["paths"][f"{WES}/runs"]
        filters = {parameter["name"] for parameter in runs["get"]["parameters"]}
        assert filters >= {"page_size", "page_token", "state", "project", "tag", "created_after"}
        assert set(runs["post"]["requestBody"]["content"]) == {
            "multipart/form-data",
            "application/json",
        }
        assert f"{WES}/runs/{{run_id}}/tasks" in document["paths"]

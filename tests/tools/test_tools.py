"""AI tools: schemas for function calling, and the service layer's rules behind them."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    ValidationFailed,
)
from simlab.engine import algorithms
from simlab.tools import call_tool, run_tool, tool_schemas, tools
from tests.factories import ProjectFactory, actor_for, member
from tests.registry.factories import wes_service

pytestmark = pytest.mark.django_db

EXPECTED = {
    "list_projects",
    "list_algorithms",
    "run_simulation",
    "run_parametric_study",
    "get_simulation",
    "wait_for_simulation",
    "get_result_picture",
    "list_simulations",
    "cancel_simulation",
    "retry_simulation",
    "annotate_simulation",
    "get_sweep_results",
    "wait_for_parametric_study",
    "cancel_parametric_study",
    "train_surrogate",
    "predict_metric",
    "suggest_runs",
    "run_adaptive_study",
}


def test_every_tool_has_a_described_json_schema() -> None:
    schemas = {s["name"]: s for s in tool_schemas()}
    assert set(schemas) == EXPECTED
    for name, schema in schemas.items():
        assert schema["description"], name
        parameters = schema["parameters"]
        assert parameters["type"] == "object"
        assert parameters.get("additionalProperties") is False, name
        for prop, spec in parameters["properties"].items():
            assert spec.get("description"), (name, prop)


def test_tools_run_through_services_and_audit_their_source() -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    created = call_tool(
        actor,
        "run_simulation",
        {"project_id": project.pk, "algorithm": "dla", "parameters": {"n_particles": 100}},
    )
    assert created["status"] == "QUEUED"
    fetched = call_tool(actor, "get_simulation", {"simulation_id": created["id"]})
    assert fetched["parameters"]["n_particles"] == 100
    listed = call_tool(actor, "list_simulations", {"project_id": project.pk, "status": "QUEUED"})
    assert [s["id"] for s in listed["simulations"]] == [created["id"]]
    entry = AuditLog.objects.get(action="simulation.create")
    assert entry.source == "ai_tool"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"algorithm": "dla"}, "project_id"),
        ({"project_id": "x", "algorithm": "dla"}, "project_id"),
        ({"project_id": 1, "algorithm": "dla", "colour": "red"}, "colour"),
    ],
)
def test_bad_tool_arguments_name_the_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        call_tool(actor_for(member()), "run_simulation", arguments)
    assert field in info.value.details


def test_tools_obey_roles_tenancy_and_quotas(settings: SettingsWrapper) -> None:
    viewer = member(Role.VIEWER)
    project = ProjectFactory(organization=viewer.memberships.get().organization)
    with pytest.raises(PermissionDenied):
        call_tool(
            actor_for(viewer, source=Source.AI_TOOL),
            "run_simulation",
            {"project_id": project.pk, "algorithm": "dla"},
        )
    with pytest.raises(NotFound):
        call_tool(
            actor_for(member(), source=Source.AI_TOOL),
            "list_simulations",
            {"project_id": project.pk},
        )
    settings.SIMLAB_MAX_ACTIVE_PER_USER = 3
    writer = member(Role.MEMBER, project.organization)
    with pytest.raises(QuotaExceeded):
        call_tool(
            actor_for(writer, source=Source.AI_TOOL),
            "run_parametric_study",
            {
                "project_id": project.pk,
                "algorithm": "dla",
                "axes": [{"parameter": "n_particles", "values": [10, 20, 30, 40]}],
            },
        )
    with pytest.raises(NotFound):
        call_tool(actor_for(writer), "no_such_tool", {})


def test_an_agent_finds_its_projects_and_every_model_with_its_parameters() -> None:
    user = member(Role.VIEWER)
    mine = ProjectFactory(organization=user.memberships.get().organization, name="Mine")
    ProjectFactory(name="Someone else's")
    actor = actor_for(user, source=Source.AI_TOOL)
    projects = call_tool(actor, "list_projects", {})["projects"]
    assert [(p["id"], p["name"]) for p in projects] == [(mine.pk, "Mine")]
    listed = {a["name"]: a for a in call_tool(actor, "list_algorithms", {})["algorithms"]}
    assert set(listed) == set(algorithms())
    dla = listed["dla"]["parameters"]["properties"]["n_particles"]
    assert dla["type"] == "integer"
    assert dla["minimum"] >= 1
    assert listed["ising"]["result_kind"] == "lattice"
    assert not AuditLog.objects.exists()  # reading leaves no audit row


def test_which_tools_change_things_and_which_take_long() -> None:
    registry = tools()
    long = {name for name, t in registry.items() if t.long}
    assert long == {"wait_for_simulation", "wait_for_parametric_study", "run_adaptive_study"}
    changing = {name for name, t in registry.items() if not t.read_only}
    assert changing == {
        "run_simulation",
        "run_parametric_study",
        "cancel_simulation",
        "retry_simulation",
        "annotate_simulation",
        "cancel_parametric_study",
        "train_surrogate",
        "run_adaptive_study",
    }


def test_waiting_reports_progress_and_gives_up_at_its_timeout() -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    created = call_tool(actor, "run_simulation", {"project_id": project.pk, "algorithm": "eden"})
    reports: list[tuple[float, float | None, str | None]] = []
    waited = run_tool(
        actor,
        "wait_for_simulation",
        {"simulation_id": created["id"], "timeout_s": 1.2},
        progress=lambda done, total, message: reports.append((done, total, message)),
    ).data
    assert waited["finished"] is False  # no worker in this test: still queued
    assert waited["status"] == "QUEUED"
    assert len(reports) >= 2
    assert reports[0] == (0.0, 1.0, "QUEUED")
    with pytest.raises(Conflict, match="has no picture"):
        run_tool(actor, "get_result_picture", {"simulation_id": created["id"]})
    with pytest.raises(ValidationFailed) as info:
        call_tool(actor, "wait_for_simulation", {"simulation_id": 1, "timeout_s": 601})
    assert "timeout_s" in info.value.details


def test_cancel_retry_and_annotate_go_through_the_services() -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    created = call_tool(actor, "run_simulation", {"project_id": project.pk, "algorithm": "eden"})
    ids = {"simulation_id": created["id"]}
    assert call_tool(actor, "cancel_simulation", ids)["status"] == "CANCELLED"
    assert call_tool(actor, "retry_simulation", ids)["status"] == "QUEUED"
    with pytest.raises(Conflict):
        call_tool(actor, "retry_simulation", ids)  # only a failed or cancelled run
    noted = call_tool(actor, "annotate_simulation", {**ids, "tags": ["Fig 2"], "note": "why"})
    assert (noted["tags"], noted["note"]) == (["fig 2"], "why")
    study = call_tool(
        actor,
        "run_parametric_study",
        {
            "project_id": project.pk,
            "algorithm": "eden",
            "axes": [{"parameter": "n_particles", "values": [100, 200]}],
        },
    )
    stopped = call_tool(actor, "cancel_parametric_study", {"sweep_id": study["sweep_id"]})
    assert stopped == {"sweep_id": study["sweep_id"], "cancelled": 2, "stopping": 0}
    actions = sorted(AuditLog.objects.filter(source="ai_tool").values_list("action", flat=True))
    assert actions == sorted(
        [
            "simulation.create",
            "simulation.cancel",
            "simulation.retry",
            "simulation.annotate",
            "sweep.create",
            "sweep.cancel",
        ]
    )
    viewer = actor_for(member(Role.VIEWER, project.organization), source=Source.AI_TOOL)
    with pytest.raises(PermissionDenied):
        call_tool(viewer, "cancel_simulation", ids)


def test_a_run_sent_to_a_service_says_where_it_went(fake_wes: Any) -> None:
    user = member(Role.MEMBER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    service = wes_service(fake_wes.url, "tools", organization=organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    run = {"project_id": project.pk, "algorithm": "dla", "parameters": {"n_particles": 100}}
    created = call_tool(actor, "run_simulation", {**run, "service_id": service.pk})
    local = call_tool(actor, "run_simulation", run)
    where = {"service_id": service.pk, "service_name": "tools", "remote_id": None,
             "state": None, "last_sync_at": None, "error": ""}  # fmt: skip
    assert created["remote"] == where
    assert local["remote"] is None
    assert call_tool(actor, "get_simulation", {"simulation_id": created["id"]})["remote"] == where
    listed = call_tool(actor, "list_simulations", {"project_id": project.pk})["simulations"]
    assert {s["id"]: s["remote"] for s in listed} == {created["id"]: where, local["id"]: None}

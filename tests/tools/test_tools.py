"""AI tools: schemas for function calling, and the service layer's rules behind them."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.core.errors import NotFound, PermissionDenied, QuotaExceeded, ValidationFailed
from simlab.tools import call_tool, tool_schemas
from tests.factories import ProjectFactory, actor_for, member

pytestmark = pytest.mark.django_db

EXPECTED = {
    "run_simulation",
    "run_parametric_study",
    "get_simulation",
    "list_simulations",
    "get_sweep_results",
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

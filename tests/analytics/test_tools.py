"""The surrogate tools (MCP and the assistant list them from the same registry): train,
predict_metric and suggest_runs through the services, audited as the AI door."""

from __future__ import annotations

import pytest

from simlab.accounts.models import Role
from simlab.analytics import services
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.core.errors import NotFound, ValidationFailed
from simlab.tools import call_tool, tool_schemas
from tests.analytics.factories import law, measured_sweep
from tests.factories import ProjectFactory, actor_for, member

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = ["sticking_probability", "n_particles"]


def test_an_agent_trains_predicts_and_asks_for_the_next_runs() -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    actor = actor_for(user, source=Source.AI_TOOL)
    sweep = measured_sweep(project)
    queued = call_tool(
        actor,
        "train_surrogate",
        {
            "project_id": project.pk,
            "name": "rg",
            "target": "radius_of_gyration",
            "inputs": INPUTS,
            "sweep_ids": [sweep.pk],
        },
    )
    assert queued["status"] == "QUEUED"
    assert services.version_train_run(queued["version_id"]) == "READY"  # the worker's call
    point = {"sticking_probability": 0.4, "n_particles": 700}
    predicted = call_tool(
        actor, "predict_metric", {"model_id": queued["model_id"], "points": [point]}
    )
    (p,) = predicted["predictions"]
    assert p["mean"] == pytest.approx(law(0.4, 700), rel=0.05)
    assert p["low"] < p["mean"] < p["high"]
    suggested = call_tool(
        actor,
        "suggest_runs",
        {
            "model_id": queued["model_id"],
            "k": 2,
            "axes": {"sticking_probability": [0.2, 0.6], "n_particles": [150, 2500]},
        },
    )
    assert len(suggested["suggestions"]) == 2
    sources = dict(AuditLog.objects.values_list("action", "source"))
    assert sources["surrogate.train"] == "ai_tool"
    assert sources["surrogate.predict"] == "ai_tool"
    assert sources["surrogate.suggest"] == "ai_tool"

    stranger = actor_for(member(Role.OWNER), source=Source.AI_TOOL)
    with pytest.raises(NotFound):
        call_tool(stranger, "predict_metric", {"model_id": queued["model_id"], "points": [point]})
    with pytest.raises(ValidationFailed) as caught:
        call_tool(
            actor,
            "predict_metric",
            {"model_id": queued["model_id"], "points": [{"n_particles": 5}]},
        )
    assert "points.0.sticking_probability" in caught.value.details


def test_the_tools_are_listed_with_their_schemas() -> None:
    schemas = {s["name"]: s for s in tool_schemas()}
    assert {"train_surrogate", "predict_metric", "suggest_runs"} <= set(schemas)
    assert "points" in schemas["predict_metric"]["parameters"]["required"]

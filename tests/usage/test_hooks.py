"""Where usage comes from: each metered action writes its events itself, in its own
transaction: a run created and finished, an assistant answer, a batch of health checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.storage import default_storage

from simlab.accounts.models import Role
from simlab.assistant.models import Role as MessageRole
from simlab.assistant.services import conversation_create, message_post, turn_add_message
from simlab.registry import services as registry
from simlab.registry.probe import ProbeResult
from simlab.simulations import execution
from simlab.simulations.models import Simulation, Status
from simlab.simulations.services import SimulationSpec, simulation_create_batch
from simlab.usage.models import DailyUsage, Kind, UsageEvent
from tests.factories import OrganizationFactory, ProjectFactory, actor_for, member
from tests.registry.factories import registered

SMALL_DLA = {"n_particles": 200}


def _quantities(organization_id: int) -> dict[str, int]:
    events = UsageEvent.objects.filter(organization_id=organization_id)
    totals: dict[str, int] = {}
    for kind, quantity in events.values_list("kind", "quantity"):
        totals[kind] = totals.get(kind, 0) + quantity
    return totals


def _rollup(organization_id: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for kind, quantity in DailyUsage.objects.filter(organization_id=organization_id).values_list(
        "kind", "quantity"
    ):
        totals[kind] = totals.get(kind, 0) + quantity
    return totals


@pytest.mark.django_db(transaction=True)
def test_a_run_finishing_writes_its_cpu_particles_and_storage_once() -> None:
    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    organization_id = project.organization_id
    specs = [SimulationSpec("dla", SMALL_DLA)]
    actor = actor_for(user)
    (pk,) = simulation_create_batch(actor, project_id=project.pk, specs=specs, queue=False)
    assert _quantities(organization_id) == {Kind.SIMULATIONS: 1}
    Simulation.objects.filter(pk=pk).update(status=Status.QUEUED)
    assert execution.execute(pk, task_id="task-1") == Status.SUCCEEDED

    run = Simulation.objects.get(pk=pk)
    files = (run.result_npz, run.result_png, run.result_tiles)
    stored = sum(default_storage.size(f.name) for f in files if f)
    used = _quantities(organization_id)
    assert used[Kind.PARTICLES] == SMALL_DLA["n_particles"]
    assert used[Kind.STORAGE_BYTES] == stored > 0
    cpu_s = sum(v for k, v in run.metrics["timings"].items() if k.endswith("cpu_s"))
    assert used[Kind.CPU_MS] == round(cpu_s * 1000)
    assert set(
        UsageEvent.objects.filter(organization_id=organization_id).values_list("user_id", flat=True)
    ) == {user.pk}
    assert _rollup(organization_id) == used

    # The finish written again under the same attempt (a duplicate task that got the row
    # back) meters nothing more: its events carry the ids already recorded.
    Simulation.objects.filter(pk=pk).update(status=Status.RUNNING)
    facts = execution.run_usage(run, run.attempts, {Kind.PARTICLES: 200, Kind.CPU_MS: 1})
    assert execution._finish(pk, run.attempts, usage=facts, status=Status.SUCCEEDED)
    assert _quantities(organization_id) == used
    assert _rollup(organization_id) == used


@pytest.mark.django_db
def test_an_assistant_message_meters_its_tokens() -> None:
    user = member(Role.VIEWER)
    organization = user.memberships.get().organization
    conversation = conversation_create(actor_for(user), organization_id=organization.pk)
    turn = message_post(actor_for(user), conversation.pk, content="How big is a DLA cluster?")
    answer = turn_add_message(
        turn.pk,
        role=MessageRole.ASSISTANT,
        content="About so big.",
        prompt_tokens=120,
        completion_tokens=30,
    )
    turn_add_message(turn.pk, role=MessageRole.ASSISTANT, content="No usage reported.")
    (event,) = UsageEvent.objects.filter(organization=organization)
    assert (event.kind, event.quantity, event.user_id) == (Kind.LLM_TOKENS, 150, user.pk)
    assert event.subject_id == str(answer.pk)
    assert _rollup(organization.pk) == {Kind.LLM_TOKENS: 150}


@pytest.mark.django_db
def test_a_batch_of_health_checks_is_one_event_per_organisation() -> None:
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    services = [
        registered("http://127.0.0.1:9/a", organization=mine),
        registered("http://127.0.0.1:9/b", organization=mine),
        registered("http://127.0.0.1:9/c", organization=theirs),
        registered("http://127.0.0.1:9/shared"),  # shared: nobody's usage
    ]
    now = datetime.now(UTC)
    registry.checker_record(None, [ProbeResult(s.pk, now, True, 5.0) for s in services])
    registry.checker_record(None, [ProbeResult(services[0].pk, now, False, None, 500, "boom")])
    counted: dict[Any, list[int]] = {}
    for organization_id, quantity in UsageEvent.objects.values_list("organization_id", "quantity"):
        counted.setdefault(organization_id, []).append(quantity)
    assert {k: sorted(v) for k, v in counted.items()} == {mine.pk: [1, 2], theirs.pk: [1]}
    assert _rollup(mine.pk) == {Kind.HEALTH_CHECKS: 3}

"""The client's hybrid access: big batches through the service layer in this process
(same permissions, quotas and audit), the rest over REST; and the one decision."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simlab.accounts.models import Role, User
from simlab.audit.models import AuditLog
from simlab.client import (
    AsyncSimLabClient,
    NotFoundError,
    SimLabClient,
    SimLabError,
    SimulationSpec,
    ValidationError,
    choose_backend,
)
from simlab.core.actor import Actor, Source
from simlab.projects.models import Project
from simlab.simulations.models import Simulation
from tests.factories import ProjectFactory, api_key_for, member
from tests.server import ServedApp


@pytest.mark.parametrize(
    ("count", "direct_available", "rest_available", "use_direct", "threshold", "expected"),
    [
        (100, False, True, True, 10, "rest"),  # no direct door on this client
        (100, True, True, False, 10, "rest"),  # SIMLAB_AI_USE_DIRECT_BACKEND off
        (10, True, True, True, 10, "rest"),  # not above the threshold
        (11, True, True, True, 10, "direct"),
        (1, True, True, True, 0, "direct"),
        (0, True, True, True, 0, "rest"),
        (1, True, False, False, 10, "direct"),  # the only door there is
        (1, False, False, True, 0, "rest"),  # nothing to choose: REST (which then says why)
    ],
)
def test_choose_backend(
    count: int,
    direct_available: bool,
    rest_available: bool,
    use_direct: bool,
    threshold: int,
    expected: str,
) -> None:
    assert (
        choose_backend(
            count,
            direct_available=direct_available,
            rest_available=rest_available,
            use_direct=use_direct,
            threshold=threshold,
        )
        == expected
    )


def _specs(n: int) -> list[SimulationSpec]:
    return [SimulationSpec("eden", {"n_particles": 20}, seed=i) for i in range(n)]


def _setup() -> tuple[User, Project, Actor]:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    return user, project, Actor(user_id=user.pk, username=user.username, source=Source.CLI)


def _batch_sources() -> list[str]:
    return list(
        AuditLog.objects.filter(action="simulation.create_batch")
        .order_by("id")
        .values_list("source", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_big_batches_take_the_direct_door_small_ones_rest(
    asgi_server: ServedApp, settings: Any
) -> None:
    user, project, actor = _setup()
    _, raw = api_key_for(user, project.organization)
    settings.SIMLAB_AI_USE_DIRECT_BACKEND = True
    settings.SIMLAB_AI_DIRECT_THRESHOLD = 2
    with SimLabClient.direct(actor, asgi_server.url, api_key=raw) as client:
        big = client.create_simulations(project.pk, _specs(3), queue=False)
        small = client.create_simulations(project.pk, _specs(2), queue=False)
        settings.SIMLAB_AI_USE_DIRECT_BACKEND = False
        switched_off = client.create_simulations(project.pk, _specs(3), queue=False)
        settings.SIMLAB_AI_USE_DIRECT_BACKEND = True
        settings.SIMLAB_AI_DIRECT_THRESHOLD = 100
        explicit = SimLabClient.direct(actor, asgi_server.url, api_key=raw, direct_threshold=0)
        overridden = explicit.create_simulations(project.pk, _specs(1), queue=False)
        explicit.close()

        assert (big.backend, small.backend, switched_off.backend, overridden.backend) == (
            "direct",
            "rest",
            "rest",
            "direct",
        )
        assert big.count == 3
        assert big.status == "CREATED"
        rows = Simulation.objects.filter(pk__in=big.ids)
        assert {r.created_by_id for r in rows} == {user.pk}
        assert {r.project_id for r in rows} == {project.pk}
        assert sorted(r.seed for r in rows) == [0, 1, 2]
        # Each door wrote its own audit row, naming itself.
        assert _batch_sources() == ["cli", "api", "api", "cli"]

        # The same validation as REST, as the same error type.
        with pytest.raises(ValidationError) as bad:
            client.create_simulations(
                project.pk, [*_specs(2), SimulationSpec("eden", {"n_particles": -1})]
            )
        assert "simulations.2.parameters.n_particles" in bad.value.details


@pytest.mark.django_db(transaction=True)
def test_direct_only_clients_sync_and_async(settings: Any) -> None:
    _, project, actor = _setup()
    foreign = ProjectFactory()
    settings.SIMLAB_AI_DIRECT_THRESHOLD = 1000  # no REST door: the direct one whatever the size

    client = SimLabClient.direct(actor)
    assert client.create_simulations(project.pk, _specs(1), queue=False).backend == "direct"
    with pytest.raises(NotFoundError) as missing:  # permissions hold on the direct door
        client.create_simulations(foreign.pk, _specs(1), queue=False)
    assert missing.value.status_code == 404
    with pytest.raises(SimLabError) as no_server:
        client.me()
    assert no_server.value.code == "no_server"

    async def in_async() -> list[int]:
        async with AsyncSimLabClient.direct(actor) as aclient:
            created = await aclient.create_simulations(project.pk, _specs(2), queue=False)
            assert created.backend == "direct"
            return created.ids

    ids = asyncio.run(in_async())
    assert Simulation.objects.filter(pk__in=ids, project=project).count() == 2
    assert _batch_sources() == ["cli", "cli"]

"""The WES client against SimLab's own WES endpoint, served by the real platform server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simlab.simulations import execution
from simlab.simulations.models import Status
from simlab.wes.client import State, WesClient, WesError
from tests.factories import ProjectFactory
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


def test_submit_follow_list_and_cancel_runs(asgi_server: ServedApp, token: str, user: Any) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    tags = {"project": str(project.pk)}

    async def scenario() -> None:
        async with WesClient(asgi_server.url, token=token) as wes:
            info = await wes.service_info()
            assert "SimLab" in info["workflow_type_versions"]

            done = await wes.submit("simlab:dla", {"n_particles": 200}, tags=tags)
            waiting = await wes.submit(
                "dla", {"n_particles": 300}, tags=tags, workflow_engine_parameters={"seed": "3"}
            )
            assert await wes.status(waiting) is State.QUEUED
            await asyncio.to_thread(execution.execute, int(done))
            assert await wes.status(done) is State.COMPLETE
            log = await wes.get_run(done)
            assert log["outputs"]["metrics"]["n_particles"] == 200
            (task,) = await wes.tasks(done)
            assert task["exit_code"] == 0

            page = await wes.list_runs(page_size=1, state="QUEUED")
            assert [run["run_id"] for run in page["runs"]] == [waiting]
            first = await wes.list_runs(page_size=1)
            second = await wes.list_runs(page_size=1, page_token=first["next_page_token"])
            assert [first["runs"][0]["run_id"], second["runs"][0]["run_id"]] == [waiting, done]

            assert await wes.cancel(waiting) == waiting
            assert await wes.status(waiting) is State.CANCELED

            with pytest.raises(WesError) as refused:
                await wes.submit("dla", {"n_particles": "many"}, tags=tags)
            assert refused.value.status_code == 400
            assert "workflow_params.n_particles" in refused.value.msg
            with pytest.raises(WesError) as missing:
                await wes.get_run("999999")
            assert missing.value.status_code == 404

    asyncio.run(scenario())


def test_an_unreachable_server_is_a_wes_error() -> None:
    async def scenario() -> None:
        async with WesClient("http://127.0.0.1:9", timeout=2) as wes:
            await wes.status("1")

    with pytest.raises(WesError) as failed:
        asyncio.run(scenario())
    assert failed.value.status_code == 0


def test_a_bad_credential_is_a_401(asgi_server: ServedApp) -> None:
    async def scenario() -> None:
        async with WesClient(asgi_server.url, token="not-a-token") as wes:
            await wes.list_runs()

    with pytest.raises(WesError) as refused:
        asyncio.run(scenario())
    assert refused.value.status_code == 401
    assert refused.value.msg


def test_states_map_onto_statuses_both_ways() -> None:
    from simlab.wes.states import STATE_OF_STATUS, STATUS_OF_STATE, state_of, status_of

    for status, state in STATE_OF_STATUS.items():
        assert STATUS_OF_STATE[state] == status  # a round trip keeps the status
    assert set(STATUS_OF_STATE) == set(State)  # every WES state has an answer
    assert state_of(Status.RUNNING, phase="compiling") is State.INITIALIZING
    assert state_of(Status.RUNNING, cancel_requested=True) is State.CANCELING
    assert state_of("NONSENSE") is State.UNKNOWN
    assert status_of("SYSTEM_ERROR") == Status.FAILED
    assert status_of("PREEMPTED") == Status.QUEUED
    assert status_of("UNKNOWN") is None
    assert status_of("whatever") is None

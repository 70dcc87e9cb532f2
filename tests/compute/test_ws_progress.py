"""Live progress over `/ws/simulations/{id}` and `/ws/projects/{id}`: a real server on
loopback, real WebSocket clients, simulations run by a real Celery worker process.

Each test runs once per way the platform can deliver updates: `poll` (no Redis: the
socket polls the database) always, and `redis` (pub/sub; the database re-read set far
beyond the test, so only published messages can arrive) when the stack has Redis.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from websockets.exceptions import ConnectionClosed

from simlab.accounts.models import Role
from simlab.compute.realtime.live import GROWTH_MESSAGE_POINTS
from simlab.simulations import events, growth
from simlab.simulations.models import Simulation
from simlab.simulations.services import (
    SimulationSpec,
    simulation_cancel,
    simulation_create,
    simulation_create_batch,
    simulation_queue,
)
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.server import ServedApp
from tests.workers import WorkerProcess
from tests.ws import open_ws, recv, recv_until_closed, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

MODES = ["poll", *(["redis"] if django_settings.REDIS_URL else [])]
RUN = {"n_particles": 600_000}  # a DLA run of seconds even on a fast machine: many progress writes
STATE_KEYS = {"simulation_id", "project_id", "sweep_id", "status", "phase", "progress", "attempt"}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, settings: Any) -> str:
    """Read by the server when a socket opens (it runs in this process)."""
    if request.param == "poll":
        settings.REDIS_URL = None
        settings.SIMLAB_LIVE_POLL_INTERVAL_S = 0.1
    else:
        settings.SIMLAB_LIVE_RESYNC_S = 3_600
    return str(request.param)


@pytest.fixture
def project(user: Any) -> Any:
    return ProjectFactory(organization=user.memberships.get().organization)


def _statuses(messages: list[dict[str, Any]]) -> list[str]:
    """Each status message as STATUS, or STATUS:phase while RUNNING."""
    return [
        m["status"] if m["phase"] is None else f"{m['status']}:{m['phase']}"
        for m in messages
        if m["type"] == "status"
    ]


def _assert_runs_in_order(messages: list[dict[str, Any]], *, complete: bool) -> None:
    """Statuses in lifecycle order, ending SUCCEEDED; rising progress while RUNNING.

    `complete`: every status is there (pub/sub); a poll may miss one that lasted less
    than its interval (QUEUED, usually), never the last.
    """
    statuses = _statuses(messages)
    # `compiling` only where the worker process had not loaded the model's kernels yet.
    lifecycle = ["QUEUED", "RUNNING:compiling", "RUNNING:running", "SUCCEEDED"]
    if complete:
        assert statuses in (lifecycle, [s for s in lifecycle if s != "RUNNING:compiling"])
    else:
        assert statuses == [s for s in lifecycle if s in statuses], statuses
        assert statuses[-1] == "SUCCEEDED", statuses
    progress = [m for m in messages if m["type"] == "progress"]
    assert len(progress) >= 3, messages
    assert all(m["status"] == "RUNNING" and m["attempt"] == 1 for m in progress)
    values = [m["progress"] for m in progress]
    assert values == sorted(set(values)), values  # strictly rising
    assert values[0] >= 0
    assert values[-1] <= 1
    # Progress comes after the run started and before it finished.
    kinds = [m["type"] if m["type"] == "progress" else m["status"] for m in messages]
    first, last = kinds.index("progress"), len(kinds) - 1 - kinds[::-1].index("progress")
    assert "SUCCEEDED" not in kinds[:last]
    assert "QUEUED" not in kinds[first:]
    assert "RUNNING" not in kinds[first:]
    for message in messages:
        # `eta_s` while an ETA is known; `flags` in states read from the row.
        assert set(message) - {"type", "error", "metrics", "eta_s", "flags"} == STATE_KEYS, message
    # Every progress message past the first steps carries an ETA (with no finished run to
    # learn from, the progress curve alone), a finished state none.
    assert all(m.get("eta_s", -1) >= 0 for m in progress if m["progress"] > 0.05), progress
    assert "eta_s" not in messages[-1]


def test_a_growing_run_streams_its_cluster_to_a_socket_that_asks(
    asgi_server: ServedApp,
    celery_worker: WorkerProcess,
    user: Any,
    project: Any,
    token: str,
) -> None:
    """`?growth=1`: every stride-th particle of the run's own cluster, in the order they
    stuck, in several `growth` messages while it runs, all before the final status; a
    socket opened half-way first gets everything so far (from offset 0). The stack's own
    way (Redis when it has one, else a file), as a deployment has it."""
    actor = actor_for(user)
    parameters = {"n_particles": 300_000}  # above SIMLAB_LIVE_GROWTH_POINTS: a stride of 2
    stride = growth.stride(parameters)
    assert stride == 2
    simulation = simulation_create(
        actor, project_id=project.pk, algorithm="dla", parameters=parameters, seed=3, queue=False
    )
    path = f"/ws/simulations/{simulation.pk}?growth=1&token={token}"
    with open_ws(asgi_server, path) as early:
        assert recv(early)["type"] == "snapshot"
        simulation_queue(actor, simulation.pk)
        seen = []
        while not any(m["type"] == "growth" and m["offset"] > 20_000 for m in seen):
            seen.append(recv(early))
        with open_ws(asgi_server, path) as late:
            late_messages, late_code = recv_until_closed(late)
        rest, code = recv_until_closed(early)
    assert (code, late_code) == (1000, 1000), celery_worker.output()

    row = Simulation.objects.get(pk=simulation.pk)
    with row.result_npz.open("rb") as f:
        positions = np.load(f)["positions"][:, :2]
    for messages in (seen + rest, late_messages):
        pieces = [m for m in messages if m["type"] == "growth"]
        assert len(pieces) >= 2, [m["type"] for m in messages]
        assert {m["attempt"] for m in pieces} == {1}
        offsets = [m["offset"] for m in pieces]
        assert offsets == [0, *np.cumsum([len(m["particles"]) for m in pieces])[:-1]]
        kinds = [m["type"] if m["type"] == "growth" else m.get("status") for m in messages]
        assert kinds.index("SUCCEEDED") > len(kinds) - 1 - kinds[::-1].index("growth")
        points = np.array([p for m in pieces for p in m["particles"]])
        kept = positions[::stride][: len(points)]
        # float32 on the way, then 4 decimals: well within 1e-3 of clusters ~1e3 across.
        np.testing.assert_allclose(points, kept, atol=1e-3, rtol=0)
        assert len(points) > len(positions[::stride]) // 2  # most of it while it ran
    # The late socket caught up at once, in messages of at most GROWTH_MESSAGE_POINTS.
    assert [m["type"] for m in late_messages[:3]] == ["snapshot", "growth", "growth"]
    assert len(late_messages[1]["particles"]) == GROWTH_MESSAGE_POINTS


@pytest.mark.parametrize("via", ["query", "first_message"])
def test_progress_of_a_celery_run_arrives_in_order_then_the_socket_closes(
    mode: str,
    via: str,
    asgi_server: ServedApp,
    celery_worker: WorkerProcess,
    user: Any,
    project: Any,
    token: str,
) -> None:
    actor = actor_for(user)
    simulation = simulation_create(
        actor, project_id=project.pk, algorithm="dla", parameters=RUN, seed=5, queue=False
    )
    path = f"/ws/simulations/{simulation.pk}"
    with open_ws(asgi_server, f"{path}?token={token}" if via == "query" else path) as ws:
        if via == "first_message":
            send(ws, type="auth", token=token)
        snapshot = recv(ws)
        assert snapshot == {
            "type": "snapshot",
            "simulation_id": simulation.pk,
            "project_id": project.pk,
            "sweep_id": None,
            "status": "CREATED",
            "phase": None,
            "progress": 0.0,
            "attempt": 0,
            "flags": [],
        }
        simulation_queue(actor, simulation.pk)
        messages, code = recv_until_closed(ws)
    assert code == 1000, (messages, celery_worker.output())
    _assert_runs_in_order(messages, complete=mode == "redis")
    final = messages[-1]
    row = Simulation.objects.get(pk=simulation.pk)
    assert final["progress"] == 1.0
    assert final["metrics"] == row.metrics
    assert final["metrics"]["n_particles"] == RUN["n_particles"]
    assert "error" not in final


def test_a_project_socket_sees_every_simulation_of_the_project_and_no_other(
    mode: str,
    asgi_server: ServedApp,
    celery_worker: WorkerProcess,
    user: Any,
    project: Any,
    token: str,
) -> None:
    actor = actor_for(user)
    elsewhere = ProjectFactory(organization=project.organization)  # same organisation
    with open_ws(asgi_server, f"/ws/projects/{project.pk}?token={token}") as ws:
        snapshot = recv(ws)
        assert snapshot == {
            "type": "snapshot",
            "project_id": project.pk,
            "counts": {},
            "simulations": [],
            "truncated": False,
        }
        ids = simulation_create_batch(
            actor,
            project_id=project.pk,
            specs=[SimulationSpec("dla", RUN, seed=s) for s in (1, 2)],
        )
        other = simulation_create(
            actor, project_id=elsewhere.pk, algorithm="dla", parameters={"n_particles": 500}
        )
        messages: list[dict[str, Any]] = []
        finished: set[int] = set()
        deadline = time.monotonic() + 150
        while finished != set(ids):
            message = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
            messages.append(message)
            if message["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                finished.add(message["simulation_id"])
        send(ws, type="ping")
        assert recv(ws, timeout=10) == {"type": "pong"}  # the stream goes on
    assert {m["simulation_id"] for m in messages} == set(ids)
    assert other.pk not in {m["simulation_id"] for m in messages}
    assert {m["project_id"] for m in messages} == {project.pk}
    for simulation_id in ids:
        own = [m for m in messages if m["simulation_id"] == simulation_id]
        _assert_runs_in_order(own, complete=mode == "redis")


def test_a_project_snapshot_counts_and_lists_the_unfinished(
    mode: str, asgi_server: ServedApp, user: Any, project: Any, token: str, settings: Any
) -> None:
    actor = actor_for(user)
    ids = [
        simulation_create(actor, project_id=project.pk, algorithm="eden", queue=False).pk
        for _ in range(3)
    ]
    simulation_cancel(actor, ids[0])
    settings.SIMLAB_LIVE_SNAPSHOT_LIMIT = 1
    with open_ws(asgi_server, f"/ws/projects/{project.pk}?token={token}") as ws:
        snapshot = recv(ws)
        assert snapshot["counts"] == {"CREATED": 2, "CANCELLED": 1}
        assert [s["simulation_id"] for s in snapshot["simulations"]] == [ids[1]]
        assert snapshot["truncated"] is True
        simulation_cancel(actor, ids[2])
        cancelled = recv(ws, timeout=30)
    assert cancelled["type"] == "status"
    assert cancelled["simulation_id"] == ids[2]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["error"] == "Cancelled before it ran."


def test_cancelling_a_queued_simulation_ends_its_stream(
    mode: str, asgi_server: ServedApp, user: Any, project: Any, token: str
) -> None:
    actor = actor_for(user)
    simulation = simulation_create(actor, project_id=project.pk, algorithm="eden", queue=False)
    with open_ws(asgi_server, f"/ws/simulations/{simulation.pk}?token={token}") as ws:
        assert recv(ws)["status"] == "CREATED"
        send(ws, type="launch")  # not for this socket: an error frame, the stream goes on
        error = recv(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == "bad_message"
        simulation_cancel(actor, simulation.pk)
        messages, code = recv_until_closed(ws, timeout=30)
    assert code == 1000
    assert [(m["type"], m["status"]) for m in messages] == [("status", "CANCELLED")]
    assert messages[0]["error"] == "Cancelled before it ran."
    # A finished simulation: its snapshot, then the close.
    with open_ws(asgi_server, f"/ws/simulations/{simulation.pk}?token={token}") as ws:
        messages, code = recv_until_closed(ws, timeout=30)
    assert code == 1000
    assert [(m["type"], m["status"]) for m in messages] == [("snapshot", "CANCELLED")]


def test_leaving_the_organisation_ends_the_feed(
    mode: str, asgi_server: ServedApp, user: Any, project: Any, token: str, settings: Any
) -> None:
    settings.SIMLAB_LIVE_RESYNC_S = 0.2  # with Redis, access is re-checked at each re-read
    simulation = simulation_create(
        actor_for(user), project_id=project.pk, algorithm="eden", queue=False
    )
    with (
        open_ws(asgi_server, f"/ws/simulations/{simulation.pk}?token={token}") as one,
        open_ws(asgi_server, f"/ws/projects/{project.pk}?token={token}") as every,
    ):
        assert recv(one)["type"] == recv(every)["type"] == "snapshot"
        user.memberships.all().delete()
        for ws in (one, every):
            messages, code = recv_until_closed(ws, timeout=30)
            assert code == 4404, messages
            assert [m["error"]["code"] for m in messages] == ["not_found"]


def test_with_redis_unreachable_a_socket_falls_back_to_polling(
    asgi_server: ServedApp, user: Any, project: Any, token: str, settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.SIMLAB_LIVE_POLL_INTERVAL_S = 0.1
    simulation = simulation_create(
        actor_for(user), project_id=project.pk, algorithm="eden", queue=False
    )
    with open_ws(asgi_server, f"/ws/simulations/{simulation.pk}?token={token}") as ws:
        assert recv(ws)["status"] == "CREATED"
        simulation_cancel(actor_for(user), simulation.pk)  # its publish fails, logged
        messages, code = recv_until_closed(ws, timeout=30)
    assert code == 1000
    assert [(m["type"], m["status"]) for m in messages] == [("status", "CANCELLED")]


def test_the_tracker_sends_changes_once_and_never_goes_back() -> None:
    tracker = events.Tracker()

    def kind(status: str, attempt: int, progress: float) -> str | None:
        state = {"simulation_id": 1, "status": status, "attempt": attempt, "progress": progress}
        message = tracker.message(state)
        return None if message is None else str(message["type"])

    tracker.seed({"simulation_id": 1, "status": "QUEUED", "attempt": 0, "progress": 0.0})
    assert kind("QUEUED", 0, 0.0) is None  # what the snapshot said
    assert kind("RUNNING", 1, 0.0) == "status"
    assert kind("RUNNING", 1, 0.5) == "progress"
    assert kind("RUNNING", 1, 0.4) is None  # a late poll
    assert kind("RUNNING", 1, 0.5) is None  # a repeat
    assert kind("QUEUED", 0, 0.0) is None  # an older attempt
    assert kind("RUNNING", 2, 0.0) == "status"  # worker lost: attempt 2 starts from 0
    assert kind("SUCCEEDED", 2, 1.0) == "status"
    tracker.forget_finished(keep=[])
    assert kind("SUCCEEDED", 2, 1.0) == "status"


def _refused(server: ServedApp, path: str) -> tuple[dict[str, Any], int | None]:
    with open_ws(server, path) as ws:
        messages, code = recv_until_closed(ws, timeout=30)
    assert len(messages) == 1, messages
    assert messages[0]["type"] == "error"
    assert set(messages[0]) == {"type", "error", "status_code", "timestamp", "request_id"}
    return messages[0], code


def test_foreign_and_unknown_ids_are_refused_alike(
    asgi_server: ServedApp, user: Any, project: Any, token: str
) -> None:
    stranger = member(Role.OWNER)
    foreign_project = ProjectFactory(organization=stranger.memberships.get().organization)
    foreign = simulation_create(
        actor_for(stranger), project_id=foreign_project.pk, algorithm="eden", queue=False
    )
    unknown = foreign.pk + 10_000
    for path in (
        f"/ws/simulations/{foreign.pk}",
        f"/ws/projects/{foreign_project.pk}",
        f"/ws/simulations/{unknown}",
        f"/ws/projects/{unknown}",
    ):
        error, code = _refused(asgi_server, f"{path}?token={token}")
        assert code == 4404, (path, error)
        assert error["status_code"] == 404
        assert error["error"]["code"] == "not_found"
    # Foreign or unknown read the same: nothing tells that the foreign one exists.
    assert (
        _refused(asgi_server, f"/ws/simulations/{foreign.pk}?token={token}")[0]["error"]
        == _refused(asgi_server, f"/ws/simulations/{unknown}?token={token}")[0]["error"]
    )

    error, code = _refused(asgi_server, f"/ws/simulations/abc?token={token}")
    assert code == 4400
    assert error["error"]["code"] == "validation_error"
    assert list(error["error"]["details"]) == ["simulation_id"]
    error, code = _refused(asgi_server, f"/ws/projects/0?token={token}")
    assert code == 4400
    assert list(error["error"]["details"]) == ["project_id"]

    _, compute_only = api_key_for(user, project.organization, scopes=["compute"])
    error, code = _refused(asgi_server, f"/ws/projects/{project.pk}?token={compute_only}")
    assert code == 4403
    assert error["error"]["code"] == "missing_scope"


@pytest.mark.parametrize("path", ["/ws/simulations/{sim}", "/ws/projects/{project}"])
def test_a_bad_token_closes_with_1008(
    asgi_server: ServedApp, user: Any, project: Any, path: str
) -> None:
    simulation = simulation_create(
        actor_for(user), project_id=project.pk, algorithm="eden", queue=False
    )
    url = path.format(sim=simulation.pk, project=project.pk)
    for query, code in (
        ("?token=not-a-token", "token_invalid"),
        ("?token=slk_deadbeef_nope", "api_key_invalid"),
    ):
        error, close = _refused(asgi_server, url + query)
        assert (error["error"]["code"], close) == (code, 1008)
    with open_ws(asgi_server, url) as ws:  # anything but auth first: nothing is sent
        send(ws, type="ping")
        error = recv(ws)
        assert error["error"]["code"] == "not_authenticated"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008

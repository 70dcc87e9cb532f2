"""Live updates of simulations: one state shape, one rule for turning states into messages.

The row stays the source of truth. Whoever changes a simulation's status or progress
calls `publish_rows` / `publish_state` (after the transaction commits); with `REDIS_URL`
set, the state goes out on Redis pub/sub (a channel per simulation and one per project),
otherwise nothing is sent and live sockets poll the database instead. Either way the
socket feeds every state it learns through a `Tracker`, so the messages a client sees
are the same whichever way the state arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import structlog
from django.conf import settings
from django.db import transaction

from simlab.simulations import eta
from simlab.simulations.models import FINISHED, Simulation, Status, current_phase

log = structlog.get_logger(__name__)

# What a state is built from: a `.values(*STATE_FIELDS)` row or a model instance.
STATE_FIELDS = (
    "id",
    "project_id",
    "sweep_id",
    "status",
    "phase",
    "progress",
    "attempts",
    "error_message",
    "metrics",
    "flags",
)
# STATE_FIELDS but the id (and the flags, which a new row has none of): what a row written
# by a service already says.
ROW_FIELDS = tuple(name for name in STATE_FIELDS[1:] if name != "flags")
_PUBLISH_CHUNK = 1_000
_REDIS_TIMEOUT_S = 2.0
# After a failed publish, skip publishing this long: an unreachable Redis must cost a
# worker one timeout now and then, not one per progress step.
_BACKOFF_S = 5.0

Topic = Literal["simulation", "project"]


def state_of(row: Mapping[str, Any] | Simulation) -> dict[str, Any]:
    """The JSON-ready live state of one simulation.

    `error` only for FAILED and CANCELLED, `metrics` only for SUCCEEDED: a progress
    message stays a few dozen bytes. `eta_s` (seconds until it finishes) when the values
    carry one, `flags` (its anomaly flags' kinds) when they come from the row.
    """
    values = (
        row
        if isinstance(row, Mapping)
        else {**{f: getattr(row, f) for f in STATE_FIELDS}, "eta_s": getattr(row, "eta_s", None)}
    )
    status = str(values["status"])
    state: dict[str, Any] = {
        "simulation_id": values["id"],
        "project_id": values["project_id"],
        "sweep_id": values["sweep_id"],
        "status": status,
        "phase": current_phase(status, str(values["phase"])),
        "progress": float(values["progress"]),
        "attempt": int(values["attempts"]),
    }
    if values.get("eta_s") is not None:
        state["eta_s"] = round(float(values["eta_s"]), 1)
    if "flags" in values:
        state["flags"] = [kind for kind in str(values["flags"] or "").split(",") if kind]
    if status in (Status.FAILED, Status.CANCELLED):
        state["error"] = values["error_message"]
    elif status == Status.SUCCEEDED:
        state["metrics"] = values["metrics"]
    return state


def is_finished(state: Mapping[str, Any]) -> bool:
    return state["status"] in FINISHED


class Tracker:
    """The last state sent per simulation; decides what (if anything) a new state says.

    A new status, phase or attempt is a `status` message, higher progress within the same
    status, phase and attempt a `progress` message; a repeat or an older state (a poll racing a
    pub/sub message) says nothing, so a client never sees progress go backwards. A state
    naming an anomaly flag not sent yet is a `flag` message (flags are only ever added;
    states without `flags`, the worker's progress states, say nothing about them).
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, str | None, int, float]] = {}
        self._flags: dict[int, frozenset[str]] = {}

    def seed(self, state: Mapping[str, Any]) -> None:
        """Record a state the client already has (from the snapshot)."""
        self._last[state["simulation_id"]] = _key(state)
        self._new_flags(state)

    def _new_flags(self, state: Mapping[str, Any]) -> bool:
        simulation_id = state["simulation_id"]
        known = self._flags.get(simulation_id, frozenset())
        flags = frozenset(state.get("flags") or ())
        if flags <= known:
            return False
        self._flags[simulation_id] = known | flags
        return True

    def message(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        simulation_id = state["simulation_id"]
        key = _key(state)
        status, phase, attempt, progress = key
        last = self._last.get(simulation_id)
        if (
            last is None
            or attempt > last[2]
            or (attempt == last[2] and (status, phase) != last[:2])
        ):
            kind = "status"
        elif (status, phase, attempt) == last[:3] and progress > last[3]:
            kind = "progress"
        elif self._new_flags(state):
            return {"type": "flag", **state}
        else:
            return None
        self._new_flags(state)
        self._last[simulation_id] = key
        return {"type": kind, **state}

    def forget_finished(self, keep: Iterable[int]) -> None:
        """Drop finished simulations that polls no longer return (bounded memory)."""
        keep = set(keep)
        for simulation_id in [
            sid for sid, (status, *_) in self._last.items() if status in FINISHED
        ]:
            if simulation_id not in keep:
                del self._last[simulation_id]
                self._flags.pop(simulation_id, None)


def _key(state: Mapping[str, Any]) -> tuple[str, str | None, int, float]:
    phase = state.get("phase")
    return str(state["status"]), phase, int(state["attempt"]), float(state["progress"])


def channel(topic: Topic, object_id: int) -> str:
    return f"{settings.SIMLAB_LIVE_CHANNEL_PREFIX}:live:{topic}:{object_id}"


# --- publishing -----------------------------------------------------------------------------
_clients: dict[str, Any] = {}
_down_until: dict[str, float] = {}  # per Redis URL


def redis_paused() -> bool:
    """Whether Redis failed a moment ago (then publishing is skipped for a while)."""
    return time.monotonic() < _down_until.get(str(settings.REDIS_URL), 0.0)


def redis_failed(event: str, exc: Exception, **fields: Any) -> None:
    """Log a failed Redis call and pause publishing for `_BACKOFF_S`."""
    _down_until[str(settings.REDIS_URL)] = time.monotonic() + _BACKOFF_S
    log.warning(event, error=str(exc), pause_s=_BACKOFF_S, **fields)


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def redis_client() -> Any:
    """This process's client for `REDIS_URL` (short timeouts)."""
    import redis

    url = str(settings.REDIS_URL)
    client = _clients.get(url)
    if client is None:
        # Short timeouts: a Redis outage must not stall a worker's run or a request.
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )
    return client


# PUBLISH for each (channel, message) pair in its one argument, a JSON array of strings
# [channel, message, channel, message, ...]: any number of messages in one command with
# one argument, and one reply. (A pipeline of PUBLISH commands makes the client encode
# and parse each one: for a batch of 1000 simulations, more than the rest of the request.)
# JSON strings decode to exactly the text encoded, so subscribers get the same messages.
_PUBLISH_ALL = """
local messages = cjson.decode(ARGV[1])
for i = 1, #messages, 2 do
    redis.call('PUBLISH', messages[i], messages[i + 1])
end
return #messages / 2
"""
_scripts: dict[str, Any] = {}


def _publish_all() -> Any:
    url = str(settings.REDIS_URL)
    script = _scripts.get(url)
    if script is None:
        script = _scripts[url] = redis_client().register_script(_PUBLISH_ALL)
    return script


def _send(states: Sequence[Mapping[str, Any]]) -> None:
    import redis

    if not states or redis_paused():
        return
    try:
        publish_all = _publish_all()
        for start in range(0, len(states), _PUBLISH_CHUNK):
            messages: list[str] = []
            for state in states[start : start + _PUBLISH_CHUNK]:
                payload = json.dumps(state, separators=(",", ":"))
                messages += (channel("simulation", state["simulation_id"]), payload)
                messages += (channel("project", state["project_id"]), payload)
            publish_all(args=[json.dumps(messages)])
    except redis.RedisError as exc:
        # Sockets re-read the rows every SIMLAB_LIVE_RESYNC_S: a lost message only delays.
        redis_failed("live_publish_failed", exc, count=len(states))


def publish_state(values: Mapping[str, Any]) -> None:
    """Publish a state built from known row values (no query), after commit."""
    if enabled():
        state = state_of(values)
        transaction.on_commit(lambda: _send([state]))


def publish_states(rows: Sequence[Mapping[str, Any]]) -> None:
    """Publish states built from known row values (`STATE_FIELDS`; no query), after commit."""
    if enabled() and rows:
        states = [state_of(row) for row in rows]
        transaction.on_commit(lambda: _send(states))


def publish_rows(simulation_ids: Sequence[int]) -> None:
    """Publish the committed state of these simulations (re-read after commit)."""
    if not enabled() or not simulation_ids:
        return
    ids = list(simulation_ids)

    def send() -> None:
        if redis_paused():
            return  # no reads for messages that would not be sent
        started = time.monotonic()
        for start in range(0, len(ids), _PUBLISH_CHUNK):
            chunk = ids[start : start + _PUBLISH_CHUNK]
            rows = Simulation.objects.filter(pk__in=chunk).order_by("pk").values(*STATE_FIELDS)
            _send(eta.states_with_etas([state_of(row) for row in rows]))
        if len(ids) > _PUBLISH_CHUNK:
            log.info("live_published", count=len(ids), seconds=time.monotonic() - started)

    transaction.on_commit(send)

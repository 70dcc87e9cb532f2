"""Live progress of queued (Celery-run) simulations, as a stream of messages.

A watch is one simulation or one project. The stream opens with a `snapshot`, then
sends `status` and `progress` messages as states change. States come from Redis
pub/sub when `REDIS_URL` is set (the database is still re-read every
`SIMLAB_LIVE_RESYNC_S`, so a lost message only delays) and from polling the database
every `SIMLAB_LIVE_POLL_INTERVAL_S` otherwise. Both feed one `events.Tracker`, which
alone decides what to send: the messages are the same either way, except that a poll
can miss a state that lasted less than one interval.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import structlog
from django.conf import settings
from django.utils import timezone

from simlab.compute.realtime.runs import particles_json
from simlab.core.actor import Actor
from simlab.core.orm import run_orm
from simlab.simulations import events, growth
from simlab.simulations.models import Status
from simlab.simulations.selectors import (
    project_live_states,
    project_status_counts,
    simulation_live_state,
)

log = structlog.get_logger(__name__)

# `finished_at` is stamped by a worker's clock, maybe on another machine, a moment before
# its commit: project polls look this far back, and the tracker drops the repeats.
FINISHED_SLACK_S = 5.0
# A `growth` message holds at most this many points (a late joiner's catch-up comes in
# several), so no message is more than a few hundred kB.
GROWTH_MESSAGE_POINTS = 20_000


@dataclass(frozen=True)
class LiveSettings:
    redis_url: str | None
    poll_interval_s: float
    resync_s: float
    snapshot_limit: int

    @classmethod
    def current(cls) -> LiveSettings:
        """Read when a connection opens (tests change settings between connections)."""
        return cls(
            redis_url=settings.REDIS_URL,
            poll_interval_s=settings.SIMLAB_LIVE_POLL_INTERVAL_S,
            resync_s=settings.SIMLAB_LIVE_RESYNC_S,
            snapshot_limit=settings.SIMLAB_LIVE_SNAPSHOT_LIMIT,
        )


class Watch(Protocol):
    channel: str

    async def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The snapshot message and the states it stands for; raises NotFound if foreign."""

    async def poll(self) -> list[dict[str, Any]]:
        """Current states that may have changed (the tracker sorts out which did)."""

    def ends_with(self, state: dict[str, Any]) -> bool:
        """Whether the stream is over once this state has been sent."""

    async def extras(self, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages to send before these states' own (a growing picture's new points)."""


class SimulationWatch:
    def __init__(self, actor: Actor, simulation_id: int, *, growth: bool = False) -> None:
        self.actor, self.simulation_id = actor, simulation_id
        self.channel = events.channel("simulation", simulation_id)
        self.growth = growth
        self.attempt, self.points = 0, 0  # the growth log read so far

    async def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        state = await run_orm(simulation_live_state, self.actor, self.simulation_id)
        return {"type": "snapshot", **state}, [state]

    async def poll(self) -> list[dict[str, Any]]:
        # Through the selector each time: a member who leaves the organisation loses the feed.
        return [await run_orm(simulation_live_state, self.actor, self.simulation_id)]

    def ends_with(self, state: dict[str, Any]) -> bool:
        return events.is_finished(state)

    async def extras(self, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`growth` messages with the points its run's log gained since the last ones: at
        each state the socket learns (a progress write appends to the log first)."""
        running = [s for s in states if s["status"] == Status.RUNNING]
        if not self.growth or not running:
            return []
        attempt = max(state["attempt"] for state in running)
        if attempt != self.attempt:
            self.attempt, self.points = attempt, 0  # a new attempt draws from scratch
        messages: list[dict[str, Any]] = []
        while True:
            points = await asyncio.to_thread(
                growth.read, self.simulation_id, attempt, self.points, GROWTH_MESSAGE_POINTS
            )
            if not len(points):
                return messages
            messages.append(
                {
                    "type": "growth",
                    "simulation_id": self.simulation_id,
                    "attempt": attempt,
                    "offset": self.points,
                    "particles": particles_json([points.astype(np.float64)]),
                }
            )
            self.points += len(points)


class ProjectWatch:
    def __init__(self, actor: Actor, project_id: int, snapshot_limit: int) -> None:
        self.actor, self.project_id, self.snapshot_limit = actor, project_id, snapshot_limit
        self.channel = events.channel("project", project_id)
        self.since = timezone.now() - timedelta(seconds=FINISHED_SLACK_S)

    def _read_snapshot(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        counts = project_status_counts(self.actor, self.project_id)
        return counts, project_live_states(self.actor, self.project_id, finished_since=self.since)

    async def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        counts, states = await run_orm(self._read_snapshot)
        # Recently finished ones are only seeded into the tracker: polls will see them again.
        active = [state for state in states if not events.is_finished(state)]
        message = {
            "type": "snapshot",
            "project_id": self.project_id,
            "counts": counts,
            "simulations": active[: self.snapshot_limit],
            "truncated": len(active) > self.snapshot_limit,
        }
        return message, states

    async def poll(self) -> list[dict[str, Any]]:
        started = timezone.now()
        states = await run_orm(
            project_live_states, self.actor, self.project_id, finished_since=self.since
        )
        self.since = max(self.since, started - timedelta(seconds=FINISHED_SLACK_S))
        return states

    def ends_with(self, state: dict[str, Any]) -> bool:
        return False

    async def extras(self, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return []


class _Subscription:
    """One pub/sub channel on Redis, read with redis-py's asyncio client."""

    def __init__(self, url: str, channel: str) -> None:
        import redis.asyncio

        self.channel = channel
        # Health checks: a connection that died silently is noticed, and polling takes over.
        self.client = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=5, health_check_interval=30
        )
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)

    async def open(self) -> None:
        await self.pubsub.subscribe(self.channel)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next state published, or None after `timeout` seconds."""
        message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None:
            return None
        try:
            state = json.loads(message["data"])
        except ValueError:
            state = None
        if not _is_state(state):
            log.warning("live_bad_message", channel=self.channel)
            return None
        return dict(state)

    async def close(self) -> None:
        try:
            await self.pubsub.aclose()
        finally:
            await self.client.aclose()


def _is_state(value: Any) -> bool:
    """What the tracker relies on (the channel is ours, but a bad message must not crash)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("simulation_id"), int)
        and isinstance(value.get("status"), str)
        and isinstance(value.get("attempt"), int)
        and isinstance(value.get("progress"), int | float)
    )


async def _subscribe(url: str, channel: str) -> _Subscription | None:
    import redis

    subscription = _Subscription(url, channel)
    try:
        await subscription.open()
    except (redis.RedisError, OSError) as exc:
        log.warning("live_subscribe_failed", channel=channel, error=str(exc))
        await subscription.close()
        return None
    return subscription


async def live_messages(watch: Watch, config: LiveSettings) -> AsyncGenerator[dict[str, Any], None]:
    """`snapshot`, then `status` / `progress` messages until the watch ends (or forever)."""
    import redis

    # Subscribe before reading the snapshot, so no change falls between the two.
    subscription = await _subscribe(config.redis_url, watch.channel) if config.redis_url else None
    try:
        snapshot, states = await watch.snapshot()
        tracker = events.Tracker()
        for state in states:
            tracker.seed(state)
        yield snapshot
        for extra in await watch.extras(states):
            yield extra
        if any(watch.ends_with(state) for state in states):
            return
        loop = asyncio.get_running_loop()
        interval = config.resync_s if subscription else config.poll_interval_s
        next_poll = loop.time() + interval
        while True:
            incoming: list[dict[str, Any]] = []
            wait = max(0.0, next_poll - loop.time())
            if subscription is not None:
                try:
                    published = await subscription.next(wait)
                except (redis.RedisError, OSError) as exc:
                    # Redis went away: carry on by polling, starting now.
                    log.warning("live_subscription_lost", channel=watch.channel, error=str(exc))
                    await asyncio.gather(subscription.close(), return_exceptions=True)
                    subscription, published = None, None
                    interval, next_poll = config.poll_interval_s, loop.time()
                if published is not None:
                    incoming.append(published)
            else:
                await asyncio.sleep(wait)
            polled: list[dict[str, Any]] | None = None
            if loop.time() >= next_poll:
                polled = await watch.poll()
                incoming.extend(polled)
                next_poll = loop.time() + interval
            for extra in await watch.extras(incoming):
                yield extra
            for state in incoming:
                message = tracker.message(state)
                if message is not None:
                    yield message
                    if watch.ends_with(message):
                        return
            if polled is not None:
                tracker.forget_finished(state["simulation_id"] for state in polled)
    finally:
        if subscription is not None:
            await asyncio.gather(subscription.close(), return_exceptions=True)

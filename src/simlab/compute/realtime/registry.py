"""`/ws/registry`'s messages: the services the actor may see, then each change of status.

The checker writes a service's state row on every check and stamps `status_changed_at`
when the status changes; the feed polls for rows stamped since its last look (slack
included: a check's transaction may commit after its stamp) and sends each change once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from django.utils import timezone

from simlab.compute.realtime.live import LiveSettings
from simlab.core.actor import Actor
from simlab.core.orm import run_orm
from simlab.registry.selectors import service_live_states

COMMIT_SLACK_S = 5.0


async def registry_status_messages(
    actor: Actor, config: LiveSettings
) -> AsyncGenerator[dict[str, Any], None]:
    since = timezone.now() - timedelta(seconds=COMMIT_SLACK_S)
    listed = await run_orm(service_live_states, actor, limit=config.snapshot_limit + 1)
    yield {
        "type": "snapshot",
        "services": listed[: config.snapshot_limit],
        "truncated": len(listed) > config.snapshot_limit,
    }
    # The status each service was last said to have (beyond the snapshot: learnt as it changes).
    said = {state["service_id"]: state["status"] for state in listed}
    while True:
        await asyncio.sleep(config.poll_interval_s)
        started = timezone.now()
        changed = await run_orm(service_live_states, actor, changed_since=since)
        since = max(since, started - timedelta(seconds=COMMIT_SLACK_S))
        for state in changed:
            previous = said.get(state["service_id"])
            if previous == state["status"]:
                continue
            said[state["service_id"]] = state["status"]
            yield {"type": "service", "previous": previous, **state}

"""The messages of `/ws/predictions/{batch_id}`: `progress` ({done, total}) whenever it
moves, then `result` (the predictions) or `failed`; the stream ends with the batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from simlab.analytics import services
from simlab.core.actor import Actor
from simlab.core.orm import run_orm

POLL_S = 0.05


async def batch_messages(batch_id: str, actor: Actor) -> AsyncGenerator[dict[str, Any], None]:
    last = -1
    while True:
        state = await run_orm(services.prediction_batch_state, actor, batch_id)
        head = {"batch_id": batch_id, "done": state["done"], "total": state["total"]}
        if state["done"] != last:
            last = state["done"]
            yield {"type": "progress", **head}
        if state["status"] == "done":
            yield {"type": "result", **head, "predictions": state["predictions"]}
            return
        if state["status"] == "failed":
            yield {"type": "failed", **head, "error": state.get("error", "")}
            return
        await asyncio.sleep(POLL_S)

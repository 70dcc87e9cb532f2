"""`/compute/predictions/batches`: surrogate predictions of many points on the compute
side; their progress streams over `/ws/predictions/{batch_id}` (simlab.compute.realtime)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from simlab.analytics import services
from simlab.compute.auth import CurrentActor
from simlab.core.orm import run_orm

router = APIRouter(tags=["predictions"])
# Running batches, held so they are not garbage-collected mid-way; their state (the
# source of truth) is in the shared cache.
_running: set[asyncio.Task[str]] = set()


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: int = Field(ge=1, description="Surrogate model id.")
    points: list[dict[str, Any]] = Field(description="Points: {parameter: value} each.")
    alias: str | None = Field(default=None, description="Version alias (default 'current').")
    version_id: int | None = Field(default=None, ge=1, description="Or this version.")


@router.post("/predictions/batches", status_code=202, name="compute_prediction_batch_create")
async def batch_create(actor: CurrentActor, body: BatchBody) -> dict[str, Any]:
    """Start predicting a batch; follow it over /ws/predictions/{batch_id} or poll it."""
    state = await run_orm(
        services.prediction_batch_create,
        actor,
        model_id=body.model_id,
        points=body.points,
        alias=body.alias,
        version_id=body.version_id,
    )
    task = asyncio.create_task(run_orm(services.prediction_batch_run, state["batch_id"]))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return state


@router.get("/predictions/batches/{batch_id}", name="compute_prediction_batch_get")
async def batch_get(actor: CurrentActor, batch_id: str) -> dict[str, Any]:
    """A batch's progress, and its predictions once done."""
    return await run_orm(services.prediction_batch_state, actor, batch_id)

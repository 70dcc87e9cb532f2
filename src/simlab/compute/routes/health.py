from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from simlab.core.health import readiness
from simlab.core.orm import run_orm

router = APIRouter(tags=["health"])


@router.get("/health", name="compute_health")
async def health() -> dict[str, str]:
    """Liveness: answers without touching any dependency."""
    return {"status": "ok", "service": "compute"}


@router.get("/ready", name="compute_ready")
async def ready() -> JSONResponse:
    """Readiness: database, broker and cache, each reported."""
    report: dict[str, Any] = await run_orm(readiness)
    return JSONResponse(
        {"service": "compute", **report}, status_code=200 if report["ready"] else 503
    )

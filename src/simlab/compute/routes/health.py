from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from simlab.compute.auth import OptionalActor
from simlab.core.health import readiness_for
from simlab.core.orm import run_orm

router = APIRouter(tags=["health"])


@router.get("/health", name="compute_health")
async def health() -> dict[str, str]:
    """Liveness: answers without touching any dependency."""
    return {"status": "ok", "service": "compute"}


@router.get("/ready", name="compute_ready")
async def ready(actor: OptionalActor) -> JSONResponse:
    """Readiness: `ready` for anyone; database, broker and cache each reported to a
    superuser."""
    detailed = actor is not None and actor.is_superuser
    report: dict[str, Any] = await run_orm(readiness_for, detailed=detailed)
    return JSONResponse(
        {"service": "compute", **report}, status_code=200 if report["ready"] else 503
    )


@router.get("/metrics", name="compute_metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus scrape of this process group (live sockets, requests, registry checks)."""
    from simlab.core.errors import error_envelope
    from simlab.core.metrics import CONTENT_TYPE, render
    from simlab.platform.scrape import scrape_allowed

    if not scrape_allowed(request.headers.get("authorization")):
        body = error_envelope(
            status_code=401, code="not_authenticated", message="A metrics token is required."
        )
        return JSONResponse(body, status_code=401)
    return Response(render(), media_type=CONTENT_TYPE)

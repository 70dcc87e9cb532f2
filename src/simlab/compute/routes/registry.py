"""The registry checker's figures in this compute process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from simlab.compute.registry import running_checker

router = APIRouter(tags=["registry"])


@router.get("/registry/checker", name="registry_checker")
async def checker_stats(
    since: float = Query(default=0.0, ge=0, description="Unix time: lateness of checks due since"),
) -> dict[str, Any]:
    """Whether this process runs the checker; its counters and check lateness (counts and
    timings only, nothing about any service)."""
    checker = running_checker()
    if checker is None:
        return {"running": False}
    return {"running": True, **checker.stats(since=since)}

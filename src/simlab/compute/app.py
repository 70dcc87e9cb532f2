"""The FastAPI application. Runs inside the combined ASGI router or alone (port 8001)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.openapi.docs import get_swagger_ui_html  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from fastapi.routing import APIRoute  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from starlette.routing import Route  # noqa: E402

from simlab.compute.errors import install_error_handlers  # noqa: E402
from simlab.compute.mcp import http as mcp_http  # noqa: E402
from simlab.compute.realtime.runs import Limits, get_pool, shutdown_pool  # noqa: E402
from simlab.compute.registry import Checker  # noqa: E402
from simlab.compute.routes import (  # noqa: E402
    assistant,
    diagnostics,
    health,
    identity,
    predictions,
    registry,
    stream,
    ws_compute,
    ws_progress,
)
from simlab.compute.signed import SignedRequestMiddleware  # noqa: E402
from simlab.core.asgi import RequestIdMiddleware  # noqa: E402
from simlab.core.openapi import add_error_responses  # noqa: E402
from simlab.platform.telemetry import instrument_fastapi  # noqa: E402

PREFIX = "/compute"


def _operation_id(route: APIRoute) -> str:
    # Stable ids give generated clients readable method names.
    return route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Warm interactive-compute workers in the background; the pool is shut down with the app.
    prestart = Limits.current().prestart_workers
    warming = asyncio.create_task(asyncio.to_thread(get_pool().prestart, prestart))
    # Start-up objects (Django, the engine registry, schemas) live for the whole process:
    # take them out of the collector's reach, so full collections stay short on the loop.
    gc.freeze()
    # The registry's health checker: one scheduler per process, replicas share the checks.
    checker = Checker() if settings.SIMLAB_REGISTRY["checker"] else None
    checking = asyncio.create_task(checker.run()) if checker is not None else None
    try:
        # The MCP endpoint's session manager: a mounted app's lifespan never runs alone.
        async with mcp_http.endpoint.lifespan():
            yield
    finally:
        if checker is not None and checking is not None:
            checker.stop()
            await asyncio.gather(checking, return_exceptions=True)
        await asyncio.gather(warming, return_exceptions=True)
        await asyncio.to_thread(shutdown_pool)


def create_app() -> FastAPI:
    app = FastAPI(
        title="SimLab compute",
        description="Real-time computation, streaming and the agents' door of SimLab.",
        version="1.0.0",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        debug=False,
    )
    install_error_handlers(app)
    app.include_router(health.router, prefix=PREFIX)
    app.include_router(identity.router, prefix=PREFIX)
    app.include_router(stream.router, prefix=PREFIX)
    app.include_router(diagnostics.router, prefix=PREFIX)
    app.include_router(assistant.router, prefix=PREFIX)
    app.include_router(registry.router, prefix=PREFIX)
    app.include_router(predictions.router, prefix=PREFIX)
    app.include_router(ws_compute.router)  # /ws/compute
    app.include_router(ws_progress.router)  # /ws/simulations/{id}, /ws/projects/{id}
    # MCP over streamable HTTP, and its protected-resource metadata (RFC 9728).
    # (A Route given an ASGI app, not a function, passes the request through untouched.)
    for path in (mcp_http.PATH, mcp_http.METADATA_PATH):
        app.router.routes.append(Route(path, mcp_http.endpoint, include_in_schema=False))

    # Swagger UI from the packaged assets, so the docs need no CDN.
    import drf_spectacular_sidecar

    assets = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=assets), name="compute-static")

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "",
            title="SimLab compute API",
            swagger_js_url=f"{PREFIX}/static/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/static/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/static/swagger-ui-dist/favicon-32x32.png",
        )

    generate_openapi = app.openapi

    def openapi_with_errors() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_responses(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi_with_errors  # type: ignore[method-assign]
    instrument_fastapi(app)
    return app


fastapi_app = create_app()
# Signed requests from Django's proxy are verified before any route runs.
signed_app = SignedRequestMiddleware(fastapi_app)
# What uvicorn serves when compute runs alone:
# `uvicorn simlab.compute.app:app --port 8001 --ws-per-message-deflate false` (deflating
# every live frame costs the event loop more than the bandwidth it saves: see
# benchmarks/realtime.py).
app = RequestIdMiddleware(signed_app)

"""The one ASGI entry point: `/compute/*` and `/ws/*` to FastAPI, the rest to Django.

`uvicorn simlab.config.asgi:application` serves both on one port (the embedded
default); `django_application` and `simlab.compute.app:app` run each alone when
scaled out behind nginx. Django's side has a lifespan too: it opens and closes the
proxy's pooled client to the compute service, runs the thread that publishes
committed work to Celery (flushed on shutdown), on SQLite, the one that checkpoints
the write-ahead log (simlab.core.wal), and it loads the URL configuration (every view)
and the result pictures' tile kernel before the first request.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import cast

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")
django.setup()

from django.urls import get_resolver  # noqa: E402

from simlab.compute.app import fastapi_app, signed_app  # noqa: E402
from simlab.core.asgi import ASGIApp, Receive, RequestIdMiddleware, Scope, Send  # noqa: E402
from simlab.core.wal import wal_checkpoint_lifespan  # noqa: E402
from simlab.platform.request_cycle import PooledHandler, ProxyHandler  # noqa: E402
from simlab.proxy.upstream import upstream_lifespan  # noqa: E402
from simlab.proxy.views import compute_proxy  # noqa: E402
from simlab.simulations.dispatch import publisher_lifespan  # noqa: E402
from simlab.simulations.tiles import tile_kernel_lifespan  # noqa: E402

Lifespan = Callable[[], AbstractAsyncContextManager[None]]


PROXY_PREFIX = "/api/v1/compute/"


# The MCP endpoint's protected-resource metadata sits at the root, as RFC 9728 places it.
MCP_METADATA_PREFIX = "/.well-known/oauth-protected-resource/compute/"


def is_compute_path(path: str) -> bool:
    return path == "/compute" or path.startswith(("/compute/", "/ws/", MCP_METADATA_PREFIX))


class DjangoApp:
    """Django, with the proxy's URL space on its own handler."""

    def __init__(self) -> None:
        self.standard = cast(ASGIApp, PooledHandler())
        self.proxy = cast(ASGIApp, ProxyHandler(compute_proxy, PROXY_PREFIX))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROXY_PREFIX):
            await self.proxy(scope, receive, send)
        else:
            await self.standard(scope, receive, send)


async def run_lifespan(lifespans: Sequence[Lifespan], receive: Receive, send: Send) -> None:
    """The ASGI lifespan protocol over plain async context managers, entered in order."""
    stack = AsyncExitStack()
    message = await receive()
    assert message["type"] == "lifespan.startup"
    try:
        for lifespan in lifespans:
            await stack.enter_async_context(lifespan())
    except Exception as exc:
        await stack.aclose()
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    await stack.aclose()
    await send({"type": "lifespan.shutdown.complete"})


class Router:
    """Path router with one lifespan for both apps."""

    def __init__(
        self, django_app: ASGIApp, compute_app: ASGIApp, lifespans: Sequence[Lifespan]
    ) -> None:
        self.django_app = django_app
        self.compute_app = compute_app
        self.lifespans = lifespans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(self.lifespans, receive, send)
        elif is_compute_path(scope.get("path", "")):
            await self.compute_app(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)


class WithLifespan:
    """An app plus the lifespan Django's own ASGI handler lacks (Django served alone)."""

    def __init__(self, app: ASGIApp, lifespans: Sequence[Lifespan]) -> None:
        self.app = app
        self.lifespans = lifespans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(self.lifespans, receive, send)
        else:
            await self.app(scope, receive, send)


@asynccontextmanager
async def url_conf_lifespan() -> AsyncIterator[None]:
    """Load the URL configuration, and with it every view, at start: otherwise the first
    request pays for those imports (seconds on a busy machine) and may time out."""
    get_resolver().url_patterns  # noqa: B018  (the property imports them)
    yield


def _compute_lifespan() -> AbstractAsyncContextManager[None]:
    return cast(AbstractAsyncContextManager[None], fastapi_app.router.lifespan_context(fastapi_app))


_django = RequestIdMiddleware(DjangoApp())
_django_lifespans: list[Lifespan] = [
    url_conf_lifespan,
    wal_checkpoint_lifespan,
    publisher_lifespan,
    upstream_lifespan,
    tile_kernel_lifespan,
]
django_application: ASGIApp = WithLifespan(_django, _django_lifespans)
compute_application: ASGIApp = RequestIdMiddleware(signed_app)
application = Router(_django, compute_application, [*_django_lifespans, _compute_lifespan])

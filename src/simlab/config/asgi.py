"""The one ASGI entry point: `/compute/*` and `/ws/*` to FastAPI, the rest to Django.

`uvicorn simlab.config.asgi:application` serves both on one port (the embedded
default); `django_application` and `simlab.compute.app:app` run each alone when
scaled out behind nginx.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from typing import cast

import django
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simlab.config.settings")
django.setup()

from simlab.compute.app import fastapi_app  # noqa: E402
from simlab.core.asgi import ASGIApp, Receive, RequestIdMiddleware, Scope, Send  # noqa: E402

django_application: ASGIApp = RequestIdMiddleware(cast(ASGIApp, get_asgi_application()))
compute_application: ASGIApp = RequestIdMiddleware(fastapi_app)


def is_compute_path(path: str) -> bool:
    return path == "/compute" or path.startswith(("/compute/", "/ws/"))


class Router:
    """Path router with one lifespan for both apps (Django has none of its own)."""

    def __init__(self, django_app: ASGIApp, compute_app: ASGIApp) -> None:
        self.django_app = django_app
        self.compute_app = compute_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif is_compute_path(scope.get("path", "")):
            await self.compute_app(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stack = AsyncExitStack()
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await stack.enter_async_context(fastapi_app.router.lifespan_context(fastapi_app))
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})


application = Router(django_application, compute_application)

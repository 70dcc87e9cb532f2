"""Unhandled exceptions on machine-facing paths become the 500 envelope, never a traceback."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware import clickjacking, common, csrf, security
from whitenoise.middleware import WhiteNoiseMiddleware

from simlab.core.errors import error_envelope

log = structlog.get_logger(__name__)

MACHINE_PATH_PREFIXES = ("/api/", "/health", "/ready")


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith(MACHINE_PATH_PREFIXES) or (
        "application/json" in accept and "text/html" not in accept
    )


def server_error_response(exc: BaseException | None = None) -> JsonResponse:
    details = {}
    if exc is not None and settings.DEBUG:
        details = {"traceback": traceback.format_exception(exc)}
    return JsonResponse(
        error_envelope(
            status_code=500,
            code="server_error",
            message="An unexpected error occurred; it has been logged.",
            details=details,
        ),
        status=500,
    )


class ErrorEnvelopeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not wants_json(request):
            return None  # HTML pages keep Django's own 500 page
        log.exception("unhandled_exception", path=request.path, method=request.method)
        return server_error_response(exception)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, made async-capable.

    WhiteNoise is sync-only; under ASGI a sync middleware makes Django run the whole
    stack below it through a thread (and serialise requests on it), which the async
    proxy and every API request would pay. Here only static paths take the sync route.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any, settings: Any = settings) -> None:
        super().__init__(get_response, settings)
        self._serves_root = bool(getattr(settings, "WHITENOISE_ROOT", None))
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if self._serves_root or request.path_info.startswith(self.static_prefix):
            response: HttpResponse = await sync_to_async(super().__call__)(request)
            return response
        response = await self.get_response(request)
        return response


# --- Django's own middleware, run on the event loop --------------------------------------------
# Under ASGI, Django runs each MiddlewareMixin hook (process_request, process_view,
# process_response) through sync_to_async: two or three thread hops per middleware per
# request, all on one shared thread. The hooks below do no blocking I/O, with the named
# exceptions (which still go to a thread), so they run inline on the loop instead.
NeedsThread = Callable[[HttpRequest, HttpResponse], bool]


def on_loop(middleware_class: type[Any], response_needs_thread: NeedsThread | None = None) -> type:
    """A subclass of `middleware_class` (a MiddlewareMixin) whose hooks run inline when async.

    A subclass, so Django's system checks still recognise the middleware."""

    class OnLoop(middleware_class):
        def __init__(self, get_response: Any) -> None:
            super().__init__(get_response)
            view_hook = getattr(self, "process_view", None)
            if self.async_mode and view_hook is not None:

                async def process_view(*args: Any) -> Any:
                    return view_hook(*args)

                self.process_view = process_view

        async def __acall__(self, request: HttpRequest) -> Any:
            response = None
            if hasattr(self, "process_request"):
                response = self.process_request(request)
            response = response or await self.get_response(request)
            if hasattr(self, "process_response"):
                if response_needs_thread is not None and response_needs_thread(request, response):
                    response = await sync_to_async(self.process_response)(request, response)
                else:
                    response = self.process_response(request, response)
            return response

    OnLoop.__name__ = OnLoop.__qualname__ = middleware_class.__name__
    return OnLoop


def _session_will_save(request: HttpRequest, response: HttpResponse) -> bool:
    session = getattr(request, "session", None)
    return session is not None and (
        session.modified or bool(getattr(settings, "SESSION_SAVE_EVERY_REQUEST", False))
    )


def _messages_will_store(request: HttpRequest, response: HttpResponse) -> bool:
    # Storing messages may load the session (a query): only when messages were touched.
    storage = getattr(request, "_messages", None)
    return storage is not None and bool(storage.used or storage._queued_messages)


SecurityMiddleware = on_loop(security.SecurityMiddleware)
SessionMiddleware = on_loop(sessions.SessionMiddleware, _session_will_save)
CommonMiddleware = on_loop(common.CommonMiddleware)
CsrfViewMiddleware = on_loop(csrf.CsrfViewMiddleware)
AuthenticationMiddleware = on_loop(auth.AuthenticationMiddleware)
MessageMiddleware = on_loop(messages.MessageMiddleware, _messages_will_store)
XFrameOptionsMiddleware = on_loop(clickjacking.XFrameOptionsMiddleware)

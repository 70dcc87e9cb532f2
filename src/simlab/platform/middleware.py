"""Machine-facing paths answer in the error envelope: an unhandled exception is the 500
envelope, never a traceback, and a path no route matches is the 404 envelope even with
DEBUG on (where Django's own answer is its HTML page listing every route)."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware import security

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


def route_not_found(request: HttpRequest) -> JsonResponse:
    """The 404 envelope of a path no route matches."""
    return JsonResponse(
        error_envelope(status_code=404, code="not_found", message=f"No route for {request.path}."),
        status=404,
    )


def _enveloped_404(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """A 404 that is not already JSON, on a machine-facing request: the envelope."""
    if (
        response.status_code == 404
        and not response.get("Content-Type", "").startswith("application/json")
        and wants_json(request)
    ):
        return route_not_found(request)
    return response


class ErrorEnvelopeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self._acall(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        return _enveloped_404(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return _enveloped_404(request, await response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not wants_json(request):
            return None  # HTML pages keep Django's own 500 page
        log.exception("unhandled_exception", path=request.path, method=request.method)
        return server_error_response(exception)


class RouteLabelMiddleware:
    """Puts the resolved URL pattern (`api/v1/simulations/<id:pk>/`) into the ASGI scope's
    state: the route label of the request's metrics and access line (simlab.core.asgi),
    bounded where the raw path is not."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *_: Any) -> None:
        scope = getattr(request, "scope", None)
        match = request.resolver_match
        if scope is not None and match is not None:
            scope.setdefault("state", {})["route"] = "/" + str(match.route)


# --- Django's own middleware, run on the event loop --------------------------------------------
# Under ASGI, Django runs each MiddlewareMixin hook (process_request, process_view,
# process_response) through sync_to_async: two or three thread hops per middleware per
# request, all on one shared thread. SecurityMiddleware's hooks do no blocking I/O, so they
# run inline on the loop instead.
def on_loop(middleware_class: type[Any]) -> type:
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
                response = self.process_response(request, response)
            return response

    OnLoop.__name__ = OnLoop.__qualname__ = middleware_class.__name__
    return OnLoop


# Only the compute proxy's chain (SIMLAB_PROXY_MIDDLEWARE) runs it inline: the page chain
# uses Django's own classes, where the thread hops are not measurable against a page.
SecurityMiddleware = on_loop(security.SecurityMiddleware)

"""Unhandled exceptions on machine-facing paths become the 500 envelope, never a traceback."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

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

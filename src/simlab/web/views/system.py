"""The Django side's health endpoints and its error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from simlab.core.errors import code_for_status, error_envelope
from simlab.core.health import readiness_for
from simlab.platform.middleware import route_not_found, server_error_response, wants_json


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: answers without touching any dependency."""
    return JsonResponse({"status": "ok", "service": "django"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape: this process group's counters, simulations by status, queue depth."""
    from simlab.core.metrics import CONTENT_TYPE, render
    from simlab.platform.scrape import platform_collector, scrape_allowed

    if not scrape_allowed(request.headers.get("Authorization")):
        return JsonResponse(
            error_envelope(
                status_code=401, code="not_authenticated", message="A metrics token is required."
            ),
            status=401,
        )
    return HttpResponse(render(platform_collector()), content_type=CONTENT_TYPE)


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    user = getattr(request, "user", None)
    report = readiness_for(detailed=bool(user is not None and user.is_superuser))
    return JsonResponse({"service": "django", **report}, status=200 if report["ready"] else 503)


def _error_page(
    request: HttpRequest, status: int, json_message: str, title: str, text: str
) -> HttpResponse:
    """The error as the envelope for API clients, as a page in the site's style for people."""
    if wants_json(request):
        envelope = error_envelope(
            status_code=status, code=code_for_status(status), message=json_message
        )
        return JsonResponse(envelope, status=status)
    return render(request, "web/error.html", {"title": title, "text": text}, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return route_not_found(request)
    return _error_page(
        request, 404, "", "Not found", "There is no such page, or it is not yours to see."
    )


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # A service's refusal says why (the role it needs); Django's own (CSRF) says nothing.
    reason = str(exception) if exception is not None and str(exception) else ""
    return _error_page(
        request, 403, "Forbidden.", "Not allowed", reason or "Your role here does not allow this."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return server_error_response()
    return _error_page(
        request,
        500,
        "",
        "Something went wrong",
        "The error has been logged. Please try again.",
    )

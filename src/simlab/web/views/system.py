"""The Django side's health endpoints and its error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from simlab.core.errors import error_envelope
from simlab.core.health import readiness_for
from simlab.platform.middleware import server_error_response, wants_json


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: answers without touching any dependency."""
    return JsonResponse({"status": "ok", "service": "django"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    user = getattr(request, "user", None)
    report = readiness_for(detailed=bool(user is not None and user.is_superuser))
    return JsonResponse({"service": "django", **report}, status=200 if report["ready"] else 503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(
            error_envelope(
                status_code=404, code="not_found", message=f"No route for {request.path}."
            ),
            status=404,
        )
    return render(
        request,
        "web/error.html",
        {"title": "Not found", "text": "There is no such page, or it is not yours to see."},
        status=404,
    )


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(
            error_envelope(status_code=403, code="permission_denied", message="Forbidden."),
            status=403,
        )
    return render(
        request,
        "web/error.html",
        {"title": "Not allowed", "text": "Your role here does not allow this."},
        status=403,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return server_error_response()
    return render(
        request,
        "web/error.html",
        {"title": "Something went wrong", "text": "The error has been logged. Please try again."},
        status=500,
    )

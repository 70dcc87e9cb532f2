"""HTML pages and the Django side's health endpoints."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from simlab.accounts.authentication import actor_from_request
from simlab.accounts.selectors import organization_list
from simlab.core.actor import Source
from simlab.core.errors import error_envelope
from simlab.core.health import readiness_for
from simlab.platform.middleware import server_error_response, wants_json
from simlab.projects.selectors import project_list


@login_required
def home(request: HttpRequest) -> HttpResponse:
    actor = actor_from_request(request, source=Source.WEB)
    return render(
        request,
        "web/home.html",
        {"organizations": organization_list(actor), "projects": project_list(actor)},
    )


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
    return render(request, "web/error.html", {"title": "Not found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return server_error_response()
    return render(request, "web/error.html", {"title": "Something went wrong"}, status=500)

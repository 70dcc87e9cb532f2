"""What every page view shares: the acting user, refusals as error pages, the layout's
context (the project switcher)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from simlab import engine
from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError, NotFound, PermissionDenied
from simlab.projects.models import Project
from simlab.projects.selectors import project_list
from simlab.web.forms import add_service_errors

P = ParamSpec("P")
SESSION_PROJECT = "simlab_project_id"


def page_actor(request: HttpRequest) -> Actor:
    return actor_from_request(request, source=Source.WEB)


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A signed-in page: a foreign or unknown object is the 404 page, a role too low for
    the action the 403 page (the services' refusals, translated)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from None

    return login_required(wrapped)


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    actor: Actor,
    project: Project | None = None,
    status: int = 200,
) -> HttpResponse:
    """`template` inside the layout; `project` is the one the switcher shows (and the
    dashboard opens next time); pages of no project keep the last one in the navigation."""
    if project is not None and request.session.get(SESSION_PROJECT) != project.pk:
        request.session[SESSION_PROJECT] = project.pk  # a session write only on a change
    projects = list(
        project_list(actor)
        .filter(archived_at__isnull=True)
        .select_related("organization")
        .order_by("name")[:200]
    )
    if project is None:
        last = request.session.get(SESSION_PROJECT)
        project = next((p for p in projects if p.pk == last), projects[0] if projects else None)
    return render(
        request,
        template,
        {**context, "current_project": project, "switcher_projects": projects},
        status=status,
    )


T = TypeVar("T")


def submit_form(form: forms.BaseForm, create: Callable[[], T]) -> T | None:
    """`create()` (a service call) when the form is valid; its refusals become the form's
    errors, except a 403 or 404, which stay the error page. None: show the form again."""
    if not form.is_valid():
        return None
    try:
        return create()
    except ApplicationError as exc:
        if exc.status_code in (403, 404):
            raise
        add_service_errors(form, exc)
        return None


def attempt(request: HttpRequest, call: Callable[[], T], success: str) -> T | None:
    """`call()` (a service call) for a posted button: its refusal becomes an error message
    on the page the person returns to (a 404 stays the 404 page), success a message."""
    try:
        result = call()
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise
        messages.error(request, exc.message)
        return None
    messages.success(request, success)
    return result


def algorithm_choice(request: HttpRequest) -> tuple[list[str], str]:
    """The registered algorithms and the one a form is for (posted, asked for, or DLA)."""
    names = sorted(engine.algorithms())
    chosen = request.POST.get("algorithm") or request.GET.get("algorithm") or "dla"
    return names, chosen if chosen in names else names[0]

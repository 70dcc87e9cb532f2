"""What every page view shares: the acting user, refusals as error pages, the layout's
context (the project switcher)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Actor, Source
from simlab.core.errors import NotFound, PermissionDenied
from simlab.projects.models import Project
from simlab.projects.selectors import project_list

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

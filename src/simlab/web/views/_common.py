"""What every page view shares: the acting user, refusals as error pages, the layout's
context (the project switcher)."""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from simlab import engine
from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError, NotFound, PermissionDenied
from simlab.projects.models import Project
from simlab.projects.selectors import project_list
from simlab.web.forms import add_service_errors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def png_response(figure: Figure, *, max_age: int = 60) -> HttpResponse:
    """A figure as a PNG picture, kept a little while by the browser (it is private)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response


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


M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    rows: list[M]
    next_query: str | None  # the query string of the next page; None on the last
    first: bool


def keyset_page(
    request: HttpRequest, qs: QuerySet[M], field: str, size: int, *, param: str = "after"
) -> KeysetPage[M]:
    """One page of `qs` in the order (`field`, id), from the cursor in `?after=` (keyset
    paging: no OFFSET, no COUNT, the same cost on every page)."""
    qs = qs.order_by(field, "-id" if field.startswith("-") else "id")
    cursor = _decode_cursor(request.GET.get(param))
    if cursor is not None:
        qs = _after(qs, field, cursor)
    rows = list(qs[: size + 1])
    next_query = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        params = request.GET.copy()
        params[param] = _encode_cursor([getattr(last, field.lstrip("-")), last.pk])
        next_query = params.urlencode()
    return KeysetPage(rows, next_query, cursor is None)


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _decode_cursor(text: str | None) -> list[Any] | None:
    if not text:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, binascii.Error):
        return None
    return values if isinstance(values, list) and len(values) == 2 else None


def _after(qs: QuerySet[M], field: str, cursor: list[Any]) -> QuerySet[M]:
    """Rows after the cursor's (field value, id) in the order `field`, id."""
    name = field.lstrip("-")
    value, last_id = cursor
    if not isinstance(last_id, int):
        return qs.none()
    if isinstance(qs.model._meta.get_field(name), models.DateTimeField):
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            return qs.none()
    # (field, id) after the cursor, written as a range on the field (which its index
    # serves) minus the ties already shown: an OR of the two made databases scan.
    if field.startswith("-"):
        return qs.filter(**{f"{name}__lte": value}).exclude(**{name: value, "id__gte": last_id})
    return qs.filter(**{f"{name}__gte": value}).exclude(**{name: value, "id__lte": last_id})

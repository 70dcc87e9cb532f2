"""Reads of projects: only ever those of the actor's organisations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import check_role, require_scope
from simlab.accounts.selectors import organization_ids_with_role, role_sql
from simlab.core.actor import Actor
from simlab.core.errors import NotFound
from simlab.platform.db import column_count, instance_from_row, model_columns
from simlab.projects.models import Project


def project_list(actor: Actor, *, organization_id: int | None = None) -> QuerySet[Project]:
    require_scope(actor, "read")
    if actor.is_superuser:
        qs = Project.objects.all()
    else:
        qs = Project.objects.filter(organization_id__in=organization_ids_with_role(actor))
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs.select_related("organization")


def project_get(actor: Actor, project_id: int, *, minimum: Role = Role.VIEWER) -> Project:
    """The project if the actor may see it with at least `minimum`; a foreign id is 404."""
    project, _ = project_get_with(actor, project_id, minimum=minimum)
    return project


def project_get_with(
    actor: Actor,
    project_id: int,
    *,
    minimum: Role = Role.VIEWER,
    columns: str = "",
    params: Sequence[Any] = (),
) -> tuple[Project, tuple[Any, ...]]:
    """`project_get`, plus the values of `columns` (SQL expressions, with `params`)
    selected in the same query: a caller that needs a few more figures (a quota's
    counts) saves a round trip on every request."""
    require_scope(actor, "read")
    found = _project_with_role(actor, project_id, columns, params)
    if found is None:
        raise NotFound("No such project.")
    project, role, extra = found
    check_role(Role(role) if role else None, minimum, what="project")
    return project, extra


def _project_with_role(
    actor: Actor, project_id: int, columns: str, params: Sequence[Any]
) -> tuple[Project, str | None, tuple[Any, ...]] | None:
    """The project, the actor's role in its organisation (or None) and the extra columns,
    in one query by key. Every project-scoped request starts here, so the query is
    written out rather than built by the ORM (a subquery there costs several times
    the query itself)."""
    quote = connection.ops.quote_name
    organization = quote(str(Project._meta.get_field("organization").column))
    role, role_params = role_sql(actor, f"p.{organization}")
    extra = f", {columns}" if columns else ""
    sql = (
        f"SELECT {model_columns(Project, 'p')}, {role}{extra}"  # noqa: S608
        f" FROM {quote(Project._meta.db_table)} p WHERE p.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*role_params, *params, project_id])
        row = cursor.fetchone()
    if row is None:
        return None
    width = column_count(Project)
    return instance_from_row(Project, row), row[width], tuple(row[width + 1 :])

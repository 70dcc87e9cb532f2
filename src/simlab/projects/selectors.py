"""Reads of projects: only ever those of the actor's organisations."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import check_role, require_scope
from simlab.accounts.selectors import organization_ids_with_role, role_sql
from simlab.core.actor import Actor
from simlab.core.db import instance_from_row, model_columns
from simlab.core.errors import NotFound
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
    require_scope(actor, "read")
    project = _project_with_role(actor, project_id)
    if project is None:
        raise NotFound("No such project.")
    role = project.actor_role  # type: ignore[attr-defined]
    check_role(Role(role) if role else None, minimum, what="project")
    return project


def _project_with_role(actor: Actor, project_id: int) -> Project | None:
    """The project with `actor_role` set (the actor's role in its organisation, or None),
    in one query by key. Every project-scoped request starts here, so the query is
    written out rather than built by the ORM (a subquery there costs several times
    the query itself)."""
    quote = connection.ops.quote_name
    organization = quote(str(Project._meta.get_field("organization").column))
    role, params = role_sql(actor, f"p.{organization}")
    sql = (
        f"SELECT {model_columns(Project, 'p')}, {role}"  # noqa: S608
        f" FROM {quote(Project._meta.db_table)} p WHERE p.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, project_id])
        row = cursor.fetchone()
    if row is None:
        return None
    project = instance_from_row(Project, row)
    project.actor_role = row[-1]  # type: ignore[attr-defined]
    return project

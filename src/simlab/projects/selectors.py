"""Reads of projects: only ever those of the actor's organisations."""

from __future__ import annotations

from django.db.models import QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.accounts.selectors import organization_ids_with_role
from simlab.core.actor import Actor
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
    project = Project.objects.select_related("organization").filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    require_role(actor, project.organization_id, minimum, what="project")
    return project

"""Changes to projects."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, ValidationFailed
from simlab.projects.models import Project
from simlab.projects.selectors import project_get


def _refuse_taken_name(organization_id: int, name: str, *, other_than: int | None = None) -> None:
    taken = Project.objects.filter(organization_id=organization_id, name=name)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise Conflict(
            "A project of that name exists in this organisation.",
            details={"name": ["Already exists."]},
        )


@transaction.atomic
def project_archive(actor: Actor, project_id: int, *, archived: bool = True) -> Project:
    """Archive a project (kept and readable, closed to new runs and sweeps) or restore it;
    admins and owners."""
    require_scope(actor, "write")
    project = project_get(actor, project_id, minimum=Role.ADMIN)
    if (project.archived_at is not None) != archived:
        project.archived_at = timezone.now() if archived else None
        project.save(update_fields=["archived_at"])
        action = "project.archive" if archived else "project.restore"
        audit_record(actor, action, obj=project, details={"name": project.name})
    return project


@transaction.atomic
def project_create(
    actor: Actor, *, organization_id: int, name: str, description: str = ""
) -> Project:
    require_scope(actor, "write")
    require_role(actor, organization_id, Role.MEMBER, what="organization")
    name = name.strip()
    if not name:
        raise ValidationFailed("A project needs a name.", details={"name": ["Required."]})
    _refuse_taken_name(organization_id, name)
    project = Project.objects.create(
        organization_id=organization_id,
        name=name,
        description=description,
        created_by_id=actor.user_id,
    )
    audit_record(actor, "project.create", obj=project, details={"name": name})
    return project


@transaction.atomic
def project_update(
    actor: Actor, project_id: int, *, name: str | None = None, description: str | None = None
) -> Project:
    require_scope(actor, "write")
    project = project_get(actor, project_id, minimum=Role.ADMIN)
    changed: dict[str, str] = {}
    if name is not None and name.strip() and name.strip() != project.name:
        _refuse_taken_name(project.organization_id, name.strip(), other_than=project.pk)
        project.name = changed["name"] = name.strip()
    if description is not None and description != project.description:
        project.description = changed["description"] = description
    if changed:
        project.save(update_fields=list(changed))
        audit_record(actor, "project.update", obj=project, details=changed)
    return project


@transaction.atomic
def project_delete(actor: Actor, project_id: int) -> None:
    """Delete a project with its simulations, sweeps, surrogate models and their files
    (admins and owners; none of its simulations may be queued or running). Audit rows
    stay."""
    from simlab.simulations.services.deletion import prepare_cascade

    require_scope(actor, "write")
    project = project_get(actor, project_id, minimum=Role.ADMIN)
    count = prepare_cascade(Project.objects.filter(pk=project.pk), "the project")
    audit_record(
        actor,
        "project.delete",
        obj=project,
        organization_id=project.organization_id,
        details={"name": project.name, "simulations": count},
    )
    project.delete()

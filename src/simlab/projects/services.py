"""Changes to projects."""

from __future__ import annotations

from django.db import transaction

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, ValidationFailed
from simlab.projects.models import Project
from simlab.projects.selectors import project_get


@transaction.atomic
def project_create(
    actor: Actor, *, organization_id: int, name: str, description: str = ""
) -> Project:
    require_scope(actor, "write")
    require_role(actor, organization_id, Role.MEMBER, what="organization")
    name = name.strip()
    if not name:
        raise ValidationFailed("A project needs a name.", details={"name": ["Required."]})
    if Project.objects.filter(organization_id=organization_id, name=name).exists():
        raise Conflict(
            "A project of that name exists in this organisation.",
            details={"name": ["Already exists."]},
        )
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
        project.name = changed["name"] = name.strip()
    if description is not None and description != project.description:
        project.description = changed["description"] = description
    if changed:
        project.save(update_fields=list(changed))
        audit_record(actor, "project.update", obj=project, details=changed)
    return project


@transaction.atomic
def project_delete(actor: Actor, project_id: int) -> None:
    """Delete a project with its simulations, sweeps and result files (admins and owners;
    none of its simulations may be queued or running). Audit rows stay."""
    from simlab.simulations.models import Simulation
    from simlab.simulations.services.deletion import prepare_cascade

    require_scope(actor, "write")
    project = project_get(actor, project_id, minimum=Role.ADMIN)
    count = prepare_cascade(Simulation.objects.filter(project_id=project.pk), "the project")
    audit_record(
        actor,
        "project.delete",
        obj=project,
        organization_id=project.organization_id,
        details={"name": project.name, "simulations": count},
    )
    project.delete()

"""Project services and selectors: tenancy, roles, audit."""

from __future__ import annotations

import pytest

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.errors import Conflict, NotFound, PermissionDenied
from simlab.projects import selectors, services
from tests.factories import ProjectFactory, actor_for, member

pytestmark = pytest.mark.django_db


def test_member_creates_and_viewer_cannot() -> None:
    creator = member(Role.MEMBER)
    organization = creator.memberships.get().organization
    project = services.project_create(
        actor_for(creator), organization_id=organization.pk, name="Growth"
    )
    assert project.created_by == creator
    assert AuditLog.objects.filter(action="project.create", object_id=str(project.pk)).exists()

    viewer = member(Role.VIEWER, organization)
    with pytest.raises(PermissionDenied):
        services.project_create(actor_for(viewer), organization_id=organization.pk, name="Other")
    assert selectors.project_get(actor_for(viewer), project.pk) == project


def test_duplicate_name_is_a_conflict_naming_the_field() -> None:
    creator = member(Role.MEMBER)
    organization_id = creator.memberships.get().organization_id
    services.project_create(actor_for(creator), organization_id=organization_id, name="Same")
    with pytest.raises(Conflict) as info:
        services.project_create(actor_for(creator), organization_id=organization_id, name="Same")
    assert "name" in info.value.details


def test_foreign_projects_are_invisible() -> None:
    user = member(Role.OWNER)
    mine = ProjectFactory(organization=user.memberships.get().organization)
    foreign = ProjectFactory()
    assert list(selectors.project_list(actor_for(user))) == [mine]
    with pytest.raises(NotFound):
        selectors.project_get(actor_for(user), foreign.pk)
    with pytest.raises(NotFound):
        services.project_create(
            actor_for(user), organization_id=foreign.organization_id, name="intrusion"
        )


def test_update_needs_admin_and_audits_the_change() -> None:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    project = ProjectFactory(organization=organization)
    with pytest.raises(PermissionDenied):
        services.project_update(
            actor_for(member(Role.MEMBER, organization)), project.pk, name="Renamed"
        )
    services.project_update(actor_for(owner), project.pk, name="Renamed")
    entry = AuditLog.objects.get(action="project.update")
    assert entry.details == {"name": "Renamed"}


def test_renaming_to_a_taken_name_is_a_conflict_naming_the_field() -> None:
    admin = member(Role.ADMIN)
    organization = admin.memberships.get().organization
    ProjectFactory(organization=organization, name="Taken")
    project = ProjectFactory(organization=organization, name="Mine")
    with pytest.raises(Conflict) as taken:
        services.project_update(actor_for(admin), project.pk, name=" Taken ")
    assert taken.value.details == {"name": ["Already exists."]}
    project.refresh_from_db()
    assert project.name == "Mine"


def test_an_archived_project_takes_no_new_work_until_restored() -> None:
    from simlab.simulations.services import simulation_create

    admin = member(Role.ADMIN)
    project = ProjectFactory(organization=admin.memberships.get().organization)
    actor = actor_for(admin)
    services.project_archive(actor, project.pk)
    with pytest.raises(Conflict) as closed:
        simulation_create(actor, project_id=project.pk, algorithm="eden", queue=False)
    assert closed.value.code == "project_archived"
    assert selectors.project_get(actor, project.pk).archived_at is not None  # still readable
    services.project_archive(actor, project.pk, archived=False)
    assert simulation_create(actor, project_id=project.pk, algorithm="eden", queue=False).pk

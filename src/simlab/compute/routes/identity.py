"""Who the caller is, and a tenancy-checked project lookup, on the compute side."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from simlab.compute.auth import CurrentActor
from simlab.core.ids import ObjectId
from simlab.core.orm import run_orm
from simlab.projects.selectors import project_get

router = APIRouter(tags=["identity"])


class MeOut(BaseModel):
    id: int | None
    username: str
    organization: int | None
    scopes: list[str]
    source: str


class ProjectOut(BaseModel):
    id: int
    organization: int
    name: str
    description: str


@router.get("/me", name="compute_me", response_model=MeOut)
async def me(actor: CurrentActor) -> MeOut:
    """The authenticated actor, from the token alone."""
    return MeOut(
        id=actor.user_id,
        username=actor.username,
        organization=actor.organization_id,
        scopes=sorted(actor.scopes),
        source=actor.source.value,
    )


@router.get("/projects/{project_id}", name="compute_project", response_model=ProjectOut)
async def project(project_id: ObjectId, actor: CurrentActor) -> ProjectOut:
    """A project the caller may see; another organisation's answers 404."""
    found = await run_orm(project_get, actor, project_id)
    return ProjectOut(
        id=found.pk,
        organization=found.organization_id,
        name=found.name,
        description=found.description,
    )

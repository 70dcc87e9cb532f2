"""Every write service x credential scope: a read-only credential reaches no write.

The matrix is built from the service modules themselves: a new public service that
takes an actor and is neither in WRITE_CASES nor in NOT_ACTOR_WRITES fails the first
test, so it cannot be forgotten.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from simlab.accounts import services as account_services
from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import ALL_SCOPES, Actor, Source
from simlab.core.errors import PermissionDenied
from simlab.privacy import services as privacy_services
from simlab.projects import services as project_services
from simlab.simulations import services as simulation_services
from simlab.simulations.services import SimulationSpec
from tests.factories import ProjectFactory, UserFactory, member

pytestmark = pytest.mark.django_db

SERVICE_MODULES: tuple[ModuleType, ...] = (
    account_services,
    project_services,
    simulation_services,
    privacy_services,
)


@dataclass
class World:
    """An owner of one organisation with a project, a simulation and a key to act on."""

    owner_id: int
    organization_id: int
    project_id: int
    simulation_id: int
    cancelled_id: int
    sweep_id: int
    key_id: int
    member_id: int
    invitation_id: int

    def actor(self, scopes: frozenset[str]) -> Actor:
        return Actor(
            user_id=self.owner_id,
            username="owner",
            source=Source.API,
            organization_id=self.organization_id,
            scopes=scopes,
        )


def _world() -> World:
    owner = member(Role.OWNER)
    organization = owner.memberships.get().organization
    project = ProjectFactory(organization=organization)
    full = Actor(user_id=owner.pk, username=owner.username, source=Source.API)
    simulation = simulation_services.simulation_create(
        full, project_id=project.pk, algorithm="random_walk", parameters={}, queue=False
    )
    cancelled = simulation_services.simulation_create(
        full, project_id=project.pk, algorithm="random_walk", parameters={}, queue=False
    )
    simulation_services.simulation_cancel(full, cancelled.pk)
    sweep = simulation_services.sweep_create(
        full,
        project_id=project.pk,
        algorithm="random_walk",
        axes=[{"parameter": "steps", "values": [100, 200]}],
    )
    for child in sweep.simulations.all():
        simulation_services.simulation_cancel(full, child.pk)
    key, _ = account_services.api_key_create(full, organization_id=organization.pk, name="k")
    colleague = member(Role.MEMBER, organization)
    invitation = account_services.invitation_create(
        full,
        organization_id=organization.pk,
        email="invited@example.org",
        role=Role.MEMBER,
        site_url="http://testserver",
    )
    return World(
        owner.pk,
        organization.pk,
        project.pk,
        simulation.pk,
        cancelled.pk,
        sweep.pk,
        key.pk,
        colleague.pk,
        invitation.pk,
    )


Call = Callable[[Actor, World], Any]

# One call per write service, with arguments that succeed for a full-scope owner.
WRITE_CASES: dict[str, Call] = {
    "organization_create": lambda a, w: account_services.organization_create(a, name="Lab B"),
    "membership_set": lambda a, w: account_services.membership_set(
        a, organization_id=w.organization_id, user=UserFactory(), role=Role.MEMBER
    ),
    "organization_update": lambda a, w: account_services.organization_update(
        a, w.organization_id, name="Lab renamed"
    ),
    "organization_delete": lambda a, w: _organization_delete_when_idle(a, w),
    "membership_remove": lambda a, w: account_services.membership_remove(
        a, organization_id=w.organization_id, user_id=w.member_id
    ),
    "api_key_create": lambda a, w: account_services.api_key_create(
        a, organization_id=w.organization_id, name="new"
    ),
    "api_key_revoke": lambda a, w: account_services.api_key_revoke(a, key_id=w.key_id),
    "invitation_create": lambda a, w: account_services.invitation_create(
        a,
        organization_id=w.organization_id,
        email="new@example.org",
        role=Role.MEMBER,
        site_url="http://testserver",
    ),
    "invitation_withdraw": lambda a, w: account_services.invitation_withdraw(
        a, organization_id=w.organization_id, invitation_id=w.invitation_id
    ),
    "project_create": lambda a, w: project_services.project_create(
        a, organization_id=w.organization_id, name="Another project"
    ),
    "project_archive": lambda a, w: project_services.project_archive(a, w.project_id),
    "project_update": lambda a, w: project_services.project_update(a, w.project_id, name="Renamed"),
    "simulation_create": lambda a, w: simulation_services.simulation_create(
        a, project_id=w.project_id, algorithm="random_walk", queue=False
    ),
    "simulation_create_batch": lambda a, w: simulation_services.simulation_create_batch(
        a, project_id=w.project_id, specs=[SimulationSpec("random_walk")], queue=False
    ),
    "sweep_create": lambda a, w: simulation_services.sweep_create(
        a,
        project_id=w.project_id,
        algorithm="random_walk",
        axes=[{"parameter": "steps", "values": [100, 200]}],
    ),
    "simulation_queue": lambda a, w: simulation_services.simulation_queue(a, w.simulation_id),
    "simulation_annotate": lambda a, w: simulation_services.simulation_annotate(
        a, w.simulation_id, tags=["x"], note="n"
    ),
    "simulation_cancel": lambda a, w: simulation_services.simulation_cancel(a, w.simulation_id),
    "simulation_retry": lambda a, w: simulation_services.simulation_retry(a, w.cancelled_id),
    "simulation_delete": lambda a, w: simulation_services.simulation_delete(a, w.cancelled_id),
    "sweep_delete": lambda a, w: simulation_services.sweep_delete(a, w.sweep_id),
    "sweep_cancel": lambda a, w: simulation_services.sweep_cancel(a, w.sweep_id),
    "project_delete": lambda a, w: _project_delete_when_idle(a, w),
    "api_key_delete": lambda a, w: account_services.api_key_delete(a, key_id=w.key_id),
    "organization_export": lambda a, w: privacy_services.organization_export(
        a, organization_id=w.organization_id, out=io.BytesIO()
    ),
    "retention_set": lambda a, w: privacy_services.retention_set(
        a, organization_id=w.organization_id, days={"results_days": 30}
    ),
    # Erasure is for platform administrators: the same owner, as a superuser.
    "user_erase": lambda a, w: privacy_services.user_erase(
        dataclasses.replace(a, is_superuser=True), user_id=w.member_id, dry_run=False
    ),
}


def _idle(world: World) -> None:
    from simlab.simulations.models import Simulation

    # Nothing queued or running (the sweep's children were cancelled already).
    Simulation.objects.filter(project_id=world.project_id, status="QUEUED").update(
        status="CANCELLED"
    )


def _project_delete_when_idle(actor: Actor, world: World) -> None:
    _idle(world)
    project_services.project_delete(actor, world.project_id)


def _organization_delete_when_idle(actor: Actor, world: World) -> None:
    _idle(world)
    account_services.organization_delete(actor, world.organization_id)


# Public functions of the service modules that take an actor but are not a user's write.
NOT_ACTOR_WRITES: frozenset[str] = frozenset(
    {
        "user_create",  # the platform's own set-up; tested below with its own rule
        # Interactive runs write no record: the check needs `compute` (not `write`;
        # tests/simulations/test_interactive.py), the slots are its run's own bookkeeping.
        "interactive_run_check",
        # The run's payer (read, and the day's CPU checked) and its CPU, recorded when it
        # ends: the interactive run's own metering (tests/simulations/test_interactive.py).
        "interactive_run_payer",
        "interactive_run_charge",
        "interactive_slot_take",
        "interactive_slot_renew",
        "interactive_slot_release",
        # Records a password Django's own form set (old password or e-mailed token checked).
        "user_password_changed",
        # Record Django's sign-in signals (a sign-in, or a refused one by nobody signed in).
        "user_signed_in",
        "user_sign_in_refused",
        # Reads and checks the service a new run would be sent to; called inside
        # simulation and sweep creation, which need `write`.
        "remote_target",
        # One's own data export is a read (audited): `read` is enough, by design.
        "user_export",
        # The scheduler's retention purge, acting as the system.
        "purge_expired",
        # The deletion itself, run after its callers' checks (organization_delete,
        # user_erase), both in this matrix.
        "organization_remove",
        # The invitee's own acceptance while signing up (allauth's adapter, in the new
        # session): the e-mailed token is the proof; no credential's door calls it.
        "invitation_accept",
    }
)


def _service_modules() -> list[ModuleType]:
    """The service modules, a services/ package's sub-domain modules included."""
    modules: list[ModuleType] = []
    for module in SERVICE_MODULES:
        modules.append(module)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            modules.append(importlib.import_module(f"{module.__name__}.{info.name}"))
    return modules


def _actor_services() -> set[str]:
    names: set[str] = set()
    for module in _service_modules():
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            parameters = list(inspect.signature(function).parameters)
            if parameters[:1] == ["actor"]:
                names.add(name)
    return names


def test_every_service_taking_an_actor_is_in_the_matrix() -> None:
    listed = set(WRITE_CASES) | NOT_ACTOR_WRITES
    assert _actor_services() == listed


@pytest.mark.parametrize("service", sorted(WRITE_CASES))
@pytest.mark.parametrize("scopes", [frozenset({"read"}), frozenset({"read", "compute"})])
def test_a_credential_without_the_scope_reaches_no_write(
    service: str, scopes: frozenset[str]
) -> None:
    world = _world()
    audit_rows = AuditLog.objects.count()
    with pytest.raises(PermissionDenied) as info:
        WRITE_CASES[service](world.actor(scopes), world)
    assert info.value.code == "missing_scope"
    assert AuditLog.objects.count() == audit_rows


@pytest.mark.parametrize("service", sorted(WRITE_CASES))
def test_a_full_scope_owner_may_do_each_write(service: str) -> None:
    """The refusals above come from the scope: the same call with every scope succeeds."""
    world = _world()
    audit_rows = AuditLog.objects.count()
    WRITE_CASES[service](world.actor(ALL_SCOPES), world)
    assert AuditLog.objects.count() > audit_rows


@pytest.mark.parametrize(
    ("scopes", "is_superuser", "allowed"),
    [
        (frozenset({"read"}), True, False),
        (ALL_SCOPES, False, False),
        (ALL_SCOPES, True, True),
    ],
)
def test_user_create_needs_an_admin_scoped_superuser(
    scopes: frozenset[str], is_superuser: bool, allowed: bool
) -> None:
    admin = UserFactory(is_superuser=is_superuser)
    actor = Actor(
        user_id=admin.pk,
        username=admin.username,
        source=Source.API,
        scopes=scopes,
        is_superuser=is_superuser,
    )
    if allowed:
        assert account_services.user_create(actor, username="new", password="x" * 12).pk
    else:
        with pytest.raises(PermissionDenied):
            account_services.user_create(actor, username="new", password="x" * 12)

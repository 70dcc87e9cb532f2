"""Export then erase a person in a two-member organisation: the export holds only their
data; after erasure no column anywhere holds their name, e-mail or key, every audit fact
remains, and the other member's data is untouched."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.core.files.storage import default_storage
from django.db import connection, transaction

from simlab.accounts import services as accounts
from simlab.accounts.credentials import authenticate_api_key
from simlab.accounts.models import ApiKey, Membership, Organization, Role, User
from simlab.assistant.models import Conversation, Message
from simlab.audit.models import AuditLog
from simlab.core.actor import Actor, Source
from simlab.core.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied
from simlab.privacy import services
from simlab.projects import services as projects
from simlab.simulations.models import Simulation, Status
from simlab.usage.models import DailyUsage, Kind, UsageEvent
from simlab.usage.services import usage_record
from tests.factories import ProjectFactory, UserFactory, actor_for, api_key_for
from tests.privacy.factories import ConversationFactory, ModelVersionFactory, SimulationFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN = Actor(user_id=None, source=Source.ADMIN, username="root", is_superuser=True)


def every_string_in_the_database() -> list[tuple[str, str, str]]:
    """(table, column, value) for every text value of every column of every table the
    database itself lists: no list of models or fields to forget one in."""
    quote = connection.ops.quote_name
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 - names from the database
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, dict | list):
                        value = json.dumps(value, ensure_ascii=False)
                    if isinstance(value, str):
                        found.append((table, column, value))
    return found


def holding(needles: list[str]) -> list[tuple[str, str, str]]:
    # As written, and as JSON text escapes it.
    lowered = [v.lower() for n in needles for v in (n, json.dumps(n)[1:-1])]
    return [
        (table, column, value)
        for table, column, value in every_string_in_the_database()
        if any(n in value.lower() for n in lowered)
    ]


def world() -> dict[str, Any]:
    """Barnaby owns a shared organisation and adds Zephyrine; she also has one of her own.
    Each has a key, a conversation and a simulation with a result file."""
    zephyrine = UserFactory(
        username="zephyrine_q",
        email="zephyrine.quill@example.org",
        first_name="Zéphyrine",
        last_name="Quillfeather",
    )
    barnaby = UserFactory(username="barnabytock", email="barnaby.tock@example.net")
    shared = accounts.organization_create(actor_for(barnaby), name="Shared lab")
    accounts.membership_set(
        actor_for(barnaby), organization_id=shared.pk, user=zephyrine, role=Role.MEMBER
    )
    own = accounts.organization_create(actor_for(zephyrine), name="Solo lab")
    shared_project = projects.project_create(
        actor_for(zephyrine),
        organization_id=shared.pk,
        # Her name lands in a text column and, through the audit row, in a JSON one
        # (which SQLite stores with non-ASCII letters escaped).
        name="Heat study for Zéphyrine Quillfeather",
        description="Ask Zéphyrine Quillfeather (zephyrine.quill@example.org) first.",
    )
    own_project = ProjectFactory(organization=own, created_by=zephyrine)
    z_key, z_raw = api_key_for(zephyrine, shared)
    b_key, _ = api_key_for(barnaby, shared)
    return {
        "zephyrine": zephyrine,
        "barnaby": barnaby,
        "shared": shared,
        "own": own,
        "z_key": z_key,
        "z_raw": z_raw,
        "b_key": b_key,
        "z_sim": SimulationFactory(
            project=shared_project, created_by=zephyrine, result=b"zephyrine-result"
        ),
        "z_private_sim": SimulationFactory(
            project=own_project, created_by=zephyrine, result=b"zephyrine-private"
        ),
        "b_sim": SimulationFactory(
            project=shared_project, created_by=barnaby, result=b"barnaby-result"
        ),
        "z_chat": ConversationFactory(organization=shared, user=zephyrine, says="my secret plan"),
        "z_private_model": ModelVersionFactory(
            project=own_project, created_by=zephyrine, artifact=b"private-weights"
        ),
        "b_model": ModelVersionFactory(
            project=shared_project, created_by=barnaby, artifact=b"shared-weights"
        ),
        "b_chat": ConversationFactory(organization=shared, user=barnaby, says="barnaby's own plan"),
        "z_usage": used(shared, zephyrine, "zephyrine-run", 700),
        "b_usage": used(shared, barnaby, "barnaby-run", 300),
    }


def used(organization: Organization, user: User, key: str, cpu_ms: int) -> UsageEvent:
    """A usage event the person caused, recorded as the platform records them."""
    with transaction.atomic():
        usage_record(
            organization_id=organization.pk,
            key=key,
            kind=Kind.CPU_MS,
            quantity=cpu_ms,
            user_id=user.pk,
        )
    return UsageEvent.objects.get(organization=organization, key=key)


def barnabys_rows(w: dict[str, Any]) -> dict[str, Any]:
    barnaby = w["barnaby"]
    return {
        "user": User.objects.filter(pk=barnaby.pk).values().get(),
        "keys": list(ApiKey.objects.filter(user=barnaby).values()),
        "memberships": list(Membership.objects.filter(user=barnaby).values()),
        "simulations": list(Simulation.objects.filter(created_by=barnaby).values()),
        "conversations": list(Conversation.objects.filter(user=barnaby).values()),
        "messages": list(Message.objects.filter(conversation__user=barnaby).values()),
        "file": default_storage.open(w["b_sim"].result_npz.name).read(),
        "model_file": default_storage.open(w["b_model"].artifact.name).read(),
    }


FACTS = ["created_at", "actor_id", "source", "action", "object_type", "object_id", "request_id"]


def audit_facts() -> dict[int, tuple[Any, ...]]:
    return {row["id"]: tuple(row[name] for name in FACTS) for row in AuditLog.objects.values()}


def export_of(actor: Actor, user: User) -> zipfile.ZipFile:
    out = io.BytesIO()
    services.user_export(actor, user_id=user.pk, out=out)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_export_then_erase_a_member_of_a_two_member_organisation() -> None:
    w = world()
    zephyrine = w["zephyrine"]
    # Her confirmed address and authenticator app (allauth's rows).
    EmailAddress.objects.create(
        user=zephyrine, email="zephyrine.quill@example.org", verified=True, primary=True
    )
    Authenticator.objects.create(
        user=zephyrine, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )

    # The export: her rows and her files, and nothing of Barnaby's.
    archive = export_of(actor_for(zephyrine), zephyrine)
    names = set(archive.namelist())
    assert {"profile.json", "simulations.json", "conversations.json", "audit.json"} <= names
    assert json.loads(archive.read("profile.json"))["email"] == "zephyrine.quill@example.org"
    exported = {s["id"] for s in json.loads(archive.read("simulations.json"))}
    assert exported == {w["z_sim"].pk, w["z_private_sim"].pk}
    assert archive.read(f"files/simulations/{w['z_sim'].pk}/result.npz") == b"zephyrine-result"
    assert [k["prefix"] for k in json.loads(archive.read("api_keys.json"))] == [w["z_key"].prefix]
    assert [u["key"] for u in json.loads(archive.read("usage_events.json"))] == ["zephyrine-run"]
    everything = b"".join(archive.read(name) for name in names)
    for foreign in [
        b"barnabytock",
        b"barnaby.tock@example.net",
        w["b_key"].prefix.encode(),
        b"barnaby-result",
        b"barnaby's own plan",
        w["z_key"].hashed_key.encode(),
    ]:
        assert foreign not in everything
    assert AuditLog.objects.filter(action="user.export", object_id=str(zephyrine.pk)).exists()

    needles = [
        "zephyrine_q",
        "zephyrine.quill@example.org",
        "Zéphyrine",
        "Quillfeather",
        w["z_key"].prefix,
        w["z_key"].hashed_key,
    ]
    assert {table for table, _, _ in holding(needles)} >= {
        "accounts_user",
        "accounts_apikey",
        "audit_auditlog",
        "projects_project",
    }

    # The dry run says what goes and changes nothing.
    before_facts, before_barnaby = audit_facts(), barnabys_rows(w)
    plan = services.user_erase(ADMIN, user_id=zephyrine.pk, dry_run=True)
    assert plan.organizations_deleted == [w["own"].pk]
    assert plan.simulations_deleted == 1
    assert plan.blockers == []
    assert plan.columns["audit_auditlog.details"] >= 1
    assert User.objects.get(pk=zephyrine.pk).username == "zephyrine_q"

    plan = services.user_erase(ADMIN, user_id=zephyrine.pk, dry_run=False)

    # No column anywhere holds her name, e-mail or key.
    assert holding(needles) == []
    erased = User.objects.get(pk=zephyrine.pk)
    assert erased.username == plan.pseudonym == services.pseudonym_for(zephyrine.pk)
    assert not erased.is_active
    assert not erased.has_usable_password()
    with pytest.raises(NotAuthenticated):
        authenticate_api_key(w["z_raw"])

    # Every audit fact remains, her own still linked to the (pseudonymised) user.
    after = audit_facts()
    assert {pk: after[pk] for pk in before_facts} == before_facts
    assert AuditLog.objects.filter(actor=erased).count() == plan.audit_rows_kept > 0
    assert set(AuditLog.objects.filter(actor=erased).values_list("actor_username", flat=True)) == {
        plan.pseudonym
    }
    assert AuditLog.objects.filter(action="user.erase", object_id=str(zephyrine.pk)).exists()

    # Her organisation went with its files; her shared simulation stays with the
    # organisation; her conversations went; Barnaby's rows and files are as they were.
    assert not Organization.objects.filter(pk=w["own"].pk).exists()
    assert not default_storage.exists(w["z_private_sim"].result_npz.name)
    assert not default_storage.exists(w["z_private_model"].artifact.name)
    assert Simulation.objects.filter(pk=w["z_sim"].pk, created_by=erased).exists()
    assert not Conversation.objects.filter(user=erased).exists()
    assert not EmailAddress.objects.filter(user=erased).exists()
    assert not Authenticator.objects.filter(user=erased).exists()
    assert barnabys_rows(w) == before_barnaby
    # The usage she caused stays a fact of the organisation, under the pseudonymised user.
    kept = UsageEvent.objects.get(pk=w["z_usage"].pk)
    assert (kept.user_id, kept.quantity) == (erased.pk, 700)
    assert DailyUsage.objects.get(organization=w["shared"], kind=Kind.CPU_MS).quantity == 1000

    # Once is enough: a second erasure is refused and changes nothing.
    again = services.user_erase(ADMIN, user_id=zephyrine.pk, dry_run=True)
    assert again.blockers == ["This person has been erased already."]
    with pytest.raises(Conflict):
        services.user_erase(ADMIN, user_id=zephyrine.pk, dry_run=False)


def test_erasure_is_blocked_while_it_would_leave_a_shared_organisation_without_owner() -> None:
    w = world()
    plan = services.user_erase(ADMIN, user_id=w["barnaby"].pk, dry_run=True)
    assert len(plan.blockers) == 1
    assert "no owner" in plan.blockers[0]
    with pytest.raises(Conflict) as refused:
        services.user_erase(ADMIN, user_id=w["barnaby"].pk, dry_run=False)
    assert refused.value.code == "erasure_blocked"
    assert User.objects.get(pk=w["barnaby"].pk).username == "barnabytock"


def test_erasure_waits_for_work_running_in_a_private_organisation() -> None:
    w = world()
    Simulation.objects.filter(pk=w["z_private_sim"].pk).update(status=Status.RUNNING)
    plan = services.user_erase(ADMIN, user_id=w["zephyrine"].pk, dry_run=True)
    assert plan.blockers == ["1 simulation(s) still queued or running: cancel them first."]
    with pytest.raises(Conflict):
        services.user_erase(ADMIN, user_id=w["zephyrine"].pk, dry_run=False)
    assert Organization.objects.filter(pk=w["own"].pk).exists()


def test_who_may_export_and_erase() -> None:
    w = world()
    zephyrine, barnaby = w["zephyrine"], w["barnaby"]
    with pytest.raises(NotFound):  # another person's export is not there for you
        export_of(actor_for(zephyrine), barnaby)
    # Through a key bound to the shared organisation: nothing of her own organisation.
    bound = export_of(actor_for(zephyrine, organization_id=w["shared"].pk), zephyrine)
    assert {s["id"] for s in json.loads(bound.read("simulations.json"))} == {w["z_sim"].pk}
    assert {m["organization_id"] for m in json.loads(bound.read("memberships.json"))} == {
        w["shared"].pk
    }
    assert b"zephyrine-private" not in b"".join(bound.read(n) for n in bound.namelist())
    with pytest.raises(PermissionDenied):
        services.user_erase(actor_for(barnaby), user_id=zephyrine.pk)
    with pytest.raises(PermissionDenied):  # a member may not export the organisation
        services.organization_export(
            actor_for(zephyrine), organization_id=w["shared"].pk, out=io.BytesIO()
        )
    with pytest.raises(NotFound):
        services.organization_export(
            actor_for(barnaby), organization_id=w["own"].pk, out=io.BytesIO()
        )
    out = io.BytesIO()
    assert (
        services.organization_export(actor_for(barnaby), organization_id=w["shared"].pk, out=out)
        == 3  # two results, one model artifact
    )
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert archive.read(f"files/model_versions/{w['b_model'].pk}/model.joblib") == b"shared-weights"
    assert [v["id"] for v in json.loads(archive.read("model_versions.json"))] == [w["b_model"].pk]
    sims = {s["id"] for s in json.loads(archive.read("simulations.json"))}
    assert sims == {w["z_sim"].pk, w["b_sim"].pk}
    everything = b"".join(archive.read(name) for name in archive.namelist())
    members = json.loads(archive.read("members.json"))
    assert {m["user__username"]: m["role"] for m in members} == {
        "barnabytock": "owner",
        "zephyrine_q": "member",
    }
    assert b"barnaby.tock@example.net" not in everything  # members by username and role only
    assert w["z_key"].hashed_key.encode() not in everything
    assert b"my secret plan" not in everything

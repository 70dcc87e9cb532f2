"""Exports: a zip of JSON files and result files, for a person or an organisation.

A person's export holds the rows they own (their profile, keys without the hash,
conversations, the simulations, sweeps and surrogate models they made, what they did
in the audit log, the usage events they caused) and, of what is shared with them, only
the containers (their organisations and those organisations' projects): never a
co-member's simulations, keys, conversations or e-mail. An organisation's export holds
what belongs to the organisation, its usage events and daily rollup included; its
members appear by username and role only, and no key or stored credential is written."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model, QuerySet

from simlab.accounts.models import ApiKey, Membership, Organization, Role, User
from simlab.accounts.permissions import require_role, require_scope
from simlab.analytics.models import ModelVersion, SurrogateModel
from simlab.assistant.models import Conversation, Message
from simlab.audit.models import AuditLog
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import NotFound
from simlab.projects.models import Project
from simlab.registry.models import Service
from simlab.simulations.models import ParameterSweep, Simulation
from simlab.usage.models import DailyUsage, UsageEvent


def _columns(model: type[Model], *, leave_out: tuple[str, ...] = ("created_by",)) -> list[str]:
    """Every column of `model` but `leave_out`: a column added later is exported too.
    Who created a row is left out: in a person's export it is them, and in an
    organisation's it names a member by id only."""
    return [f.attname for f in model._meta.concrete_fields if f.name not in leave_out]


_PROJECT = _columns(Project)
_SWEEP = _columns(ParameterSweep)
_SIMULATION = _columns(Simulation)
_SURROGATE = _columns(SurrogateModel)
_VERSION = _columns(ModelVersion)
_USAGE_EVENT = _columns(UsageEvent, leave_out=("user",))
_DAILY_USAGE = _columns(DailyUsage)
_AUDIT = [
    "id",
    "created_at",
    "source",
    "action",
    "organization_id",
    "object_type",
    "object_id",
    "details",
    "ip",
    "request_id",
]
_API_KEY = ["id", "organization_id", "name", "prefix", "scopes", "created_at"]
_API_KEY += ["expires_at", "revoked_at", "last_used_at"]
_SERVICE = ["id", "name", "url", "kind", "visibility", "description", "enabled", "tags"]
_SERVICE += ["interval_s", "timeout_s", "created_at"]


def _rows(queryset: QuerySet[Any], fields: list[str]) -> list[dict[str, Any]]:
    return list(queryset.order_by("pk").values(*fields))


class _Zip:
    """The archive being written: JSON documents and copies of result files."""

    def __init__(self, out: IO[bytes]) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.files = 0

    def json(self, name: str, value: Any) -> None:
        text = json.dumps(value, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        self.archive.writestr(name, text)

    def stored_files(
        self, rows: Iterable[dict[str, Any]], columns: tuple[str, ...], folder: str
    ) -> None:
        """Copy the stored file each row names in `columns` to `folder/<id>/`."""
        for row in rows:
            for column in columns:
                name = row[column]
                if not name:
                    continue
                arcname = f"files/{folder}/{row['id']}/{PurePosixPath(name).name}"
                try:
                    with (
                        default_storage.open(name, "rb") as source,
                        self.archive.open(arcname, "w", force_zip64=True) as target,
                    ):
                        shutil.copyfileobj(source, target, 1 << 20)
                except FileNotFoundError:  # the row says so, the storage lost it: skip
                    continue
                self.files += 1

    def result_files(self, simulations: Iterable[dict[str, Any]]) -> None:
        self.stored_files(simulations, ("result_npz", "result_png", "result_tiles"), "simulations")

    def close(self) -> None:
        self.archive.close()


def _conversations(chosen: QuerySet[Conversation]) -> list[dict[str, Any]]:
    conversations = _rows(chosen, ["id", "organization_id", "title", "created_at", "updated_at"])
    messages: dict[int, list[dict[str, Any]]] = {}
    for message in Message.objects.filter(conversation__in=chosen).order_by(
        "conversation_id", "seq"
    ):
        messages.setdefault(message.conversation_id, []).append(
            {
                "seq": message.seq,
                "role": message.role,
                "content": message.content,
                "tool_calls": message.tool_calls,
                "tool_name": message.tool_name,
                "created_at": message.created_at,
            }
        )
    for conversation in conversations:
        conversation["messages"] = messages.get(conversation["id"], [])
    return conversations


def user_export(actor: Actor, *, user_id: int, out: IO[bytes]) -> int:
    """Write the person's export to `out`; the number of result files in it. Oneself, a
    superuser, or the platform (CLI) may export a person; through a key bound to one
    organisation, only what lies in that organisation (and the profile)."""
    require_scope(actor, "read")
    if actor.user_id != user_id and not (actor.is_superuser or actor.is_system):
        raise NotFound("No such user.")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    archive = _Zip(out)
    archive.json(
        "profile.json",
        {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
        },
    )
    # A credential bound to one organisation (an API key) exports what lies in it only.
    bound = actor.organization_id

    def within(queryset: QuerySet[Any], organization_path: str) -> QuerySet[Any]:
        return queryset if bound is None else queryset.filter(**{organization_path: bound})

    memberships = within(Membership.objects.filter(user=user), "organization_id")
    archive.json(
        "memberships.json",
        _rows(memberships, ["organization_id", "organization__name", "role", "created_at"]),
    )
    organization_ids = memberships.values("organization_id")
    archive.json(
        "projects.json",
        _rows(Project.objects.filter(organization_id__in=organization_ids), _PROJECT),
    )
    simulations = _rows(
        within(Simulation.objects.filter(created_by=user), "project__organization_id"),
        _SIMULATION,
    )
    archive.json("simulations.json", simulations)
    sweeps = within(ParameterSweep.objects.filter(created_by=user), "project__organization_id")
    archive.json("sweeps.json", _rows(sweeps, _SWEEP))
    keys = within(ApiKey.objects.filter(user=user), "organization_id")
    archive.json("api_keys.json", _rows(keys, _API_KEY))
    archive.json(
        "conversations.json",
        _conversations(within(Conversation.objects.filter(user=user), "organization_id")),
    )
    models = within(SurrogateModel.objects.filter(created_by=user), "project__organization_id")
    archive.json("surrogate_models.json", _rows(models, _SURROGATE))
    versions = within(ModelVersion.objects.filter(created_by=user), "project__organization_id")
    archive.json("model_versions.json", _rows(versions, _VERSION))
    audit = within(AuditLog.objects.filter(actor=user), "organization_id")
    archive.json("audit.json", _rows(audit, _AUDIT))
    usage = within(UsageEvent.objects.filter(user=user), "organization_id")
    archive.json("usage_events.json", _rows(usage, _USAGE_EVENT))
    archive.result_files(simulations)
    archive.close()
    audit_record(
        actor, "user.export", obj=user, details={"files": archive.files, "organization": bound}
    )
    return archive.files


def organization_export(actor: Actor, *, organization_id: int, out: IO[bytes]) -> int:
    """Write the organisation's export to `out` (its owners and admins); the number of
    result files in it."""
    require_scope(actor, "admin")
    require_role(actor, organization_id, Role.ADMIN, what="organization")
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:  # a superuser asked for an id that does not exist
        raise NotFound("No such organization.")
    archive = _Zip(out)
    archive.json(
        "organization.json",
        {
            "id": organization.pk,
            "name": organization.name,
            "slug": organization.slug,
            "created_at": organization.created_at,
        },
    )
    archive.json(
        "members.json",
        _rows(
            Membership.objects.filter(organization=organization),
            ["user__username", "role", "created_at"],
        ),
    )
    archive.json("projects.json", _rows(organization.projects.all(), _PROJECT))
    simulations = _rows(Simulation.objects.filter(project__organization=organization), _SIMULATION)
    archive.json("simulations.json", simulations)
    archive.json(
        "sweeps.json",
        _rows(ParameterSweep.objects.filter(project__organization=organization), _SWEEP),
    )
    archive.json(
        "registry_services.json", _rows(Service.objects.filter(organization=organization), _SERVICE)
    )
    archive.json(
        "audit.json",
        _rows(AuditLog.objects.filter(organization=organization), [*_AUDIT, "actor_username"]),
    )
    archive.json(
        "surrogate_models.json",
        _rows(SurrogateModel.objects.filter(project__organization=organization), _SURROGATE),
    )
    versions = _rows(ModelVersion.objects.filter(project__organization=organization), _VERSION)
    archive.json("model_versions.json", versions)
    archive.json(
        "usage_events.json",
        _rows(UsageEvent.objects.filter(organization=organization), [*_USAGE_EVENT, "user_id"]),
    )
    daily = DailyUsage.objects.filter(organization=organization)
    archive.json("usage_daily.json", _rows(daily, _DAILY_USAGE))
    archive.result_files(simulations)
    archive.stored_files(versions, ("artifact",), "model_versions")
    archive.close()
    audit_record(actor, "organization.export", obj=organization, details={"files": archive.files})
    return archive.files

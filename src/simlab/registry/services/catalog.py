"""Registering, changing and removing services. Organisation admins manage their
organisation's services; only staff register shared ones (no organisation)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import apprise
import pydantic
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from simlab.accounts.models import Role, User
from simlab.accounts.permissions import require_role, require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import Conflict, PermissionDenied, ValidationFailed
from simlab.registry.models import Kind, Service, ServiceState, Visibility
from simlab.registry.secrets import encrypt_headers
from simlab.registry.selectors import service_get
from simlab.registry.timing import next_slot

MANAGER_ROLE = Role.ADMIN


def _email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("not an e-mail address") from None
    return value


Email = Annotated[str, AfterValidator(_email)]


# Apprise schemes that notify this host itself (its desktop, its syslog), not a person.
_LOCAL_APPRISE = frozenset(
    {"syslog", "windows", "macosx", "dbus", "qt", "kde", "gnome", "glib", "gio"}
)


def _apprise_url(value: str) -> str:
    # Apprise knows its schemes and each one's required parts: a URL it cannot turn
    # into a notifier now would only fail at the first outage.
    if len(value) > 2000 or apprise.Apprise.instantiate(value) is None:
        raise ValueError("not an Apprise URL this server can send to")
    if value.split(":", 1)[0].strip().lower() in _LOCAL_APPRISE:
        raise ValueError("notifications to this server itself are not allowed")
    return value


AppriseUrl = Annotated[str, AfterValidator(_apprise_url)]


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ServiceSpec(BaseModel):
    """A service's configuration, as validated for every door."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: AnyHttpUrl
    kind: Kind = Kind.HTTP
    visibility: Visibility = Visibility.ORGANIZATION
    description: str = Field(default="", max_length=10_000)
    enabled: bool = True
    interval_s: int = Field(default=300, ge=1, le=86_400)
    unhealthy_interval_s: int = Field(default=60, ge=1, le=86_400)
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    failure_threshold: int = Field(default=3, ge=1, le=100)
    success_threshold: int = Field(default=2, ge=1, le=100)
    jitter_s: float = Field(default=0.0, ge=0, le=3_600)
    expected_status: list[int] = Field(default_factory=list, max_length=50)
    max_latency_ms: int | None = Field(default=None, ge=1, le=600_000)
    json_equals: dict[str, Any] = Field(default_factory=dict, max_length=50)
    cert_expiry_days: int | None = Field(default=None, ge=1, le=3_650)
    tags: list[str] = Field(default_factory=list, max_length=50)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, max_length=100)
    notify_webhooks: list[AnyHttpUrl] = Field(default_factory=list, max_length=20)
    notify_emails: list[Email] = Field(default_factory=list, max_length=20)
    notify_apprise: list[AppriseUrl] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSpec:
        errors: dict[str, list[str]] = {}
        for name in ("interval_s", "unhealthy_interval_s"):
            if self.timeout_s >= getattr(self, name):
                errors.setdefault("timeout_s", []).append(f"Must be shorter than {name}.")
        if self.jitter_s >= self.interval_s:
            errors["jitter_s"] = ["Must be shorter than interval_s."]
        if any(not 100 <= code <= 599 for code in self.expected_status):
            errors["expected_status"] = ["HTTP status codes are 100 to 599."]
        if any(not tag.strip() or len(tag) > 100 for tag in self.tags):
            errors["tags"] = ["Tags are 1 to 100 characters."]
        if errors:
            raise _FieldErrors(errors)
        return self

    def row(self) -> dict[str, Any]:
        """The model's columns from this spec."""
        values = self.model_dump(mode="json")
        values["url"] = str(self.url)
        values["kind"] = self.kind.value
        values["visibility"] = self.visibility.value
        values["name"] = self.name.strip()
        return values


class _FieldErrors(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {v[0]}" for k, v in errors.items()))
        self.errors = errors


SPEC_FIELDS = tuple(ServiceSpec.model_fields)


def _validated(values: dict[str, Any]) -> ServiceSpec:
    try:
        return ServiceSpec.model_validate(values)
    except pydantic.ValidationError as exc:
        fields: dict[str, list[str]] = {}
        for error in exc.errors():
            context = error.get("ctx", {}).get("error")
            if isinstance(context, _FieldErrors):
                for name, messages in context.errors.items():
                    fields.setdefault(name, []).extend(messages)
                continue
            path = ".".join(str(part) for part in error.get("loc", ())) or "non_field_errors"
            fields.setdefault(path, []).append(str(error.get("msg", "invalid")))
        raise ValidationFailed.for_fields(fields) from exc


def _is_staff(actor: Actor) -> bool:
    if actor.is_superuser:
        return True
    return actor.user_id is not None and (
        User.objects.filter(pk=actor.user_id, is_staff=True).exists()
    )


def _require_manager(actor: Actor, organization_id: int | None) -> None:
    require_scope(actor, "write")
    if organization_id is None:
        if not (_is_staff(actor) or actor.is_system):
            raise PermissionDenied(
                "Only staff may register or change shared services.",
                details={"organization": ["Required for non-staff users."]},
            )
        return
    require_role(actor, organization_id, MANAGER_ROLE, what="organization")


def _refuse_taken_name(organization_id: int | None, name: str, other_than: int | None) -> None:
    taken = Service.objects.filter(name=name)
    taken = (
        taken.filter(organization__isnull=True)
        if organization_id is None
        else taken.filter(organization_id=organization_id)
    )
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise Conflict(
            "A service of that name is registered here.", details={"name": ["Already exists."]}
        )


def _first_check(service: Service, now: datetime) -> datetime:
    return next_slot(service.pk, service.interval_s, now)


@transaction.atomic
def service_create(
    actor: Actor,
    *,
    organization_id: int | None,
    credentials: dict[str, str] | None = None,
    **fields: Any,
) -> Service:
    """Register a service; its first check is due within one interval (at its phase)."""
    _require_manager(actor, organization_id)
    spec = _validated(fields)
    _refuse_taken_name(organization_id, spec.name.strip(), None)
    now = timezone.now()
    service = Service.objects.create(
        organization_id=organization_id,
        created_by_id=actor.user_id,
        credentials_encrypted=encrypt_headers(_headers(credentials)),
        created_at=now,
        updated_at=now,
        **spec.row(),
    )
    ServiceState.objects.create(service=service, next_check_at=_first_check(service, now))
    audit_record(
        actor,
        "registry.service.create",
        obj=service,
        details={"name": service.name, "url": service.url, "kind": service.kind},
    )
    return service


def _headers(credentials: Any) -> dict[str, str]:
    if credentials is None or credentials == {}:
        return {}
    valid = isinstance(credentials, dict) and all(
        isinstance(name, str)
        and _HEADER_NAME.fullmatch(name)
        and isinstance(value, str)
        and not _LINE_BREAK.search(value)
        for name, value in credentials.items()
    )
    if not valid:
        raise ValidationFailed.for_fields(
            {"credentials": ["A map of HTTP header names to string values."]}
        )
    return dict(credentials)


# RFC 9110 field names (tokens); values may not break the header line.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LINE_BREAK = re.compile(r"[\r\n\x00]")


def service_for_write(actor: Actor, service_id: int) -> Service:
    """The service, if the actor may see it (else 404) and manage it (else 403)."""
    service = service_get(actor, service_id)
    _require_manager(actor, service.organization_id)
    return service


# Changing these re-plans the next check, and the checkers drop what they had claimed.
_SCHEDULE_FIELDS = frozenset({"url", "kind", "enabled", "interval_s", "unhealthy_interval_s"})


@transaction.atomic
def service_update(
    actor: Actor,
    service_id: int,
    *,
    credentials: dict[str, str] | None = None,
    **fields: Any,
) -> Service:
    """Change some fields (the rest keep their values); `credentials={}` removes them."""
    service = service_for_write(actor, service_id)
    unknown = sorted(set(fields) - set(SPEC_FIELDS))
    if unknown:
        raise ValidationFailed.for_fields({name: ["Unknown field."] for name in unknown})
    current = {name: getattr(service, name) for name in SPEC_FIELDS}
    spec = _validated({**current, **fields})
    row = spec.row()
    changed = {name: value for name, value in row.items() if value != _plain(current[name])}
    if "name" in changed:
        _refuse_taken_name(service.organization_id, row["name"], service.pk)
    if credentials is not None:
        service.credentials_encrypted = encrypt_headers(_headers(credentials))
    if not changed and credentials is None:
        return service
    now = timezone.now()
    for name, value in changed.items():
        setattr(service, name, value)
    service.updated_at = now
    service.save()
    if _SCHEDULE_FIELDS & changed.keys():
        ServiceState.objects.filter(service_id=service.pk).update(
            next_check_at=_first_check(service, now), lease_owner="", lease_until=None
        )
    details: dict[str, Any] = {name: changed[name] for name in changed}
    if credentials is not None:
        details["credentials"] = "changed" if credentials else "removed"
    audit_record(actor, "registry.service.update", obj=service, details=details)
    return service


def _plain(value: Any) -> Any:
    """A model value as the spec's JSON dump spells it (for change detection)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@transaction.atomic
def service_delete(actor: Actor, service_id: int) -> None:
    """Remove a service with its state, results and incidents (audit rows stay)."""
    service = service_for_write(actor, service_id)
    audit_record(
        actor,
        "registry.service.delete",
        obj=service,
        organization_id=service.organization_id,
        details={"name": service.name, "url": service.url},
    )
    service.delete()

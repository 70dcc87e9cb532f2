"""The Django admin writes through the service layer, like every other door.

`ServiceSaveMixin` saves an add or change form by calling the admin's
`save_with_service` while the form is checked, so the service's refusals show as form
errors and nothing is written; `ServiceDeleteMixin` deletes one object or a selection
through `delete_with_service`, one service call (and audit row) each, and reports each
refusal instead of Django's blanket "Successfully deleted". The services decide
permissions, validation and audit; these mixins only translate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import Promise

from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError
from simlab.web.forms import add_service_errors

M = TypeVar("M", bound=Model)

_REFUSED = "_simlab_admin_refused"


def _refused(request: HttpRequest) -> int:
    """Deletions refused by a service in this request."""
    return int(getattr(request, _REFUSED, 0))


def admin_actor(request: HttpRequest) -> Actor:
    """The signed-in admin user as an Actor of source `admin`."""
    return actor_from_request(request, source=Source.ADMIN)


class ServiceSaveMixin(Generic[M]):
    """Add and change forms saved by `save_with_service` (subclasses define it)."""

    def save_with_service(self, actor: Actor, obj: M | None, data: dict[str, Any]) -> M:
        """Create (`obj` None) or change `obj` from the form's cleaned `data`."""
        raise NotImplementedError

    def get_form(
        self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        model_admin = self

        class ServiceForm(base):  # type: ignore[misc, valid-type]
            instance: M

            # The service saves while the form is checked, so that its refusals show
            # as form errors (the admin's view is one transaction).
            def clean(self) -> dict[str, Any]:
                cleaned: dict[str, Any] = super().clean()
                if self.errors:
                    return cleaned
                try:
                    self.instance = model_admin.save_with_service(
                        admin_actor(request), obj if change else None, cleaned
                    )
                except ApplicationError as exc:
                    add_service_errors(self, exc)
                return cleaned

        return ServiceForm

    def save_model(self, request: HttpRequest, obj: M, form: Any, change: bool) -> None:
        """Saved by the service in the form's clean."""


class ServiceDeleteMixin(Generic[M]):
    """Deletions through `delete_with_service` (subclasses define it)."""

    def delete_with_service(self, actor: Actor, obj: M) -> None:
        raise NotImplementedError

    def _delete_one(self, request: HttpRequest, obj: M) -> bool:
        try:
            self.delete_with_service(admin_actor(request), obj)
        except ApplicationError as exc:
            setattr(request, _REFUSED, _refused(request) + 1)
            self.message_user(request, f"{obj} was not deleted: {exc.message}", messages.ERROR)
            return False
        return True

    def delete_model(self, request: HttpRequest, obj: M) -> None:
        self._delete_one(request, obj)

    def get_deleted_objects(
        self, objs: Sequence[M] | QuerySet[M], request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[str], list[Any]]:
        # The service decides what may go with the row (who may delete, what must not be
        # running): rows whose admin is read-only (usage facts, invitations) go with their
        # organisation rather than blocking its deletion for want of a delete permission.
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)  # type: ignore[misc]
        return deleted, counts, set(), protected

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[M]) -> None:
        deleted = sum(self._delete_one(request, obj) for obj in queryset)
        if _refused(request) and deleted:
            total = deleted + _refused(request)
            self.message_user(request, f"Deleted {deleted} of {total}.", messages.WARNING)

    def message_user(
        self,
        request: HttpRequest,
        message: str | Promise,
        level: int | str = messages.INFO,
        extra_tags: str = "",
        fail_silently: bool = False,
    ) -> None:
        if level == messages.SUCCESS and _refused(request):
            return  # Django's "deleted successfully": not what happened
        super().message_user(  # type: ignore[misc]
            request, message, level, extra_tags=extra_tags, fail_silently=fail_silently
        )

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        if _refused(request):
            opts = self.model._meta  # type: ignore[attr-defined]
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj_id])
            )
        response: HttpResponse = super().response_delete(  # type: ignore[misc]
            request, obj_display, obj_id
        )
        return response


class ServiceModelAdmin(ServiceSaveMixin[M], ServiceDeleteMixin[M], admin.ModelAdmin[M]):
    """A ModelAdmin whose every write is a service call."""

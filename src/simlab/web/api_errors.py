"""DRF's exception handler, answering every error with the one envelope."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from simlab.core.errors import ApplicationError, ValidationFailed, code_for_status, error_envelope


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than {limit} bytes.")


def _details(exc: exceptions.APIException) -> Any:
    detail = exc.detail
    if isinstance(detail, dict | list):
        return detail
    return {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Envelope for API errors; None (re-raise → 500 envelope) for anything unexpected."""
    if isinstance(exc, exceptions.ValidationError):
        exc = ValidationFailed.for_fields(_fields(exc.detail))
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(exc.envelope(), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    details = _details(exc)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait))
        details = {"retry_after_s": int(wait)}
    if isinstance(exc.detail, dict) and "detail" in exc.detail:
        # simplejwt's shape: {"detail": ..., "code": ..., "messages": [...]}
        message = str(exc.detail["detail"])
        code = str(exc.detail.get("code") or code_for_status(exc.status_code))
    else:
        message = str(exc.detail)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code_for_status(exc.status_code)
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and code == "authentication_failed":
        code = "not_authenticated"
    return Response(
        error_envelope(status_code=exc.status_code, code=code, message=message, details=details),
        status=exc.status_code,
        headers=headers,
    )


def _fields(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {dotted path: [messages]} (list items by index), the shape
    every door's field errors have."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            fields.update(_fields(value, f"{path}.{key}" if path else str(key)))
        return fields
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        fields = {}
        for index, item in enumerate(detail):
            fields.update(_fields(item, f"{path}.{index}" if path else str(index)))
        return fields
    items = detail if isinstance(detail, list) else [detail]
    return {path: [str(item) for item in items]} if items else {}

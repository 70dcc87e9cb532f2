"""The one application error type and the one error envelope every door answers with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simlab.core.context import current_request_id


class ApplicationError(Exception):
    """A refusal the caller can act on: a stable `code`, a message and details.

    Services raise this (or a subclass); each door turns it into the envelope.
    """

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details if details is not None else {}


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_error"


class NotAuthenticated(ApplicationError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class QuotaExceeded(ApplicationError):
    status_code = 429
    code = "quota_exceeded"


def error_envelope(
    *, status_code: int, code: str, message: str, details: Any = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "details"}, "status_code", "timestamp", "request_id"}`."""
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "status_code": status_code,
        "timestamp": datetime.now(UTC).isoformat(),
        "request_id": current_request_id(),
    }


STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "throttled",
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


def code_for_status(status_code: int) -> str:
    return STATUS_CODES.get(status_code, "error")

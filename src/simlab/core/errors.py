"""The one application error type and the one error envelope every door answers with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pydantic

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

    def envelope(self) -> dict[str, Any]:
        """This refusal as the one error envelope."""
        return error_envelope(
            status_code=self.status_code, code=self.code, message=self.message, details=self.details
        )


class ValidationFailed(ApplicationError):
    """Input that breaks a rule. Field errors become one through `for_fields` (or
    `from_pydantic`), on every door: details map each field's dotted path to its
    messages, and the message names the first field."""

    status_code = 400
    code = "validation_error"

    @classmethod
    def for_fields(
        cls, details: Mapping[str, Sequence[str]], *, status_code: int | None = None
    ) -> ValidationFailed:
        fields = {path: [str(m) for m in messages] for path, messages in details.items()}
        if not fields:
            return cls("Invalid input.", status_code=status_code)
        path, messages = next(iter(fields.items()))
        first = messages[0] if messages else "invalid"
        message = f"Invalid input: {path}: {first}" if path else f"Invalid input: {first}"
        return cls(message, details=fields, status_code=status_code)

    @classmethod
    def from_pydantic(
        cls,
        exc: pydantic.ValidationError,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        status_code: int | None = None,
    ) -> ValidationFailed:
        """Pydantic's errors by dotted path under `prefix` (location parts in `skip`, such
        as FastAPI's "body", left out)."""
        return cls.for_fields(
            pydantic_fields(exc.errors(), prefix, skip=skip), status_code=status_code
        )


def pydantic_fields(
    errors: Sequence[Any], prefix: str = "", *, skip: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Pydantic-style error dicts (`loc`, `msg`) as {dotted path: [messages]}."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            # FastAPI's body that is not JSON: its location ends in a character offset.
            reason = (error.get("ctx") or {}).get("error", "")
            where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            fields.setdefault("body", []).append(f"Not valid JSON{where}: {reason}".rstrip(": "))
            continue
        parts = [str(part) for part in (prefix, *loc) if part not in ("", *skip)]
        fields.setdefault(".".join(parts), []).append(str(error.get("msg", "invalid")))
    return fields


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

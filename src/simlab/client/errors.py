"""Errors of the client: the server's error envelope, as one exception type.

Every SimLab door answers errors with
`{"error": {"code", "message", "details"}, "status_code", "timestamp", "request_id"}`;
`error_from_response` turns that (or any other failed response) into a `SimLabError`
subclass chosen by the status code.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "SimLabConnectionError",
    "SimLabError",
    "SimLabTimeout",
    "ValidationError",
    "error_from_response",
]


class SimLabError(Exception):
    """A refusal or failure reported by SimLab (or on the way to it).

    `code` is the envelope's stable machine-readable code (`validation_error`,
    `not_found`, `token_expired`, …); `details` its field-by-field details.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details: Any = details if details is not None else {}
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        status = f"{self.status_code} " if self.status_code else ""
        return f"{status}{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r}, details={self.details!r}, request_id={self.request_id!r})"
        )


class ValidationError(SimLabError):
    """400/422: bad input; `details` names the fields."""


class AuthenticationError(SimLabError):
    """401: missing, invalid or expired credentials."""


class PermissionDeniedError(SimLabError):
    """403: authenticated, but not allowed (role or API-key scope)."""


class NotFoundError(SimLabError):
    """404: no such object, or one of another organisation."""


class ConflictError(SimLabError):
    """409: the object is not in a state that allows this (e.g. cancel a finished run)."""


class RateLimitedError(SimLabError):
    """429: a quota or rate limit; `retry_after_s` when the server says how long to wait."""

    @property
    def retry_after_s(self) -> float | None:
        if isinstance(self.details, dict):
            value = self.details.get("retry_after_s")
            if isinstance(value, int | float):
                return float(value)
        return None


class ServerError(SimLabError):
    """5xx: the server failed; retrying later may help."""


class SimLabConnectionError(SimLabError):
    """The server could not be reached (no HTTP status)."""


class SimLabTimeout(SimLabError, TimeoutError):
    """Waiting for a simulation or sweep took longer than the timeout given."""


_BY_STATUS: dict[int, type[SimLabError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class(status_code: int) -> type[SimLabError]:
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, SimLabError)


def error_from_response(response: httpx.Response) -> SimLabError:
    """The envelope of a failed response as an exception (any body is tolerated)."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    cls = error_class(status)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return cls(
            status,
            str(error.get("code") or "error"),
            str(error.get("message") or response.reason_phrase),
            error.get("details") or {},
            body.get("request_id") or request_id,
        )
    # Not an envelope (a proxy's HTML page, a framework default): keep what there is.
    text = response.text.strip()
    message = text[:300] if text else response.reason_phrase or f"HTTP {status}"
    return cls(status, f"http_{status}", message, body if body is not None else {}, request_id)

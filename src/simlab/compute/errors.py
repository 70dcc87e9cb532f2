"""FastAPI's error handlers: the same envelope as Django's."""

from __future__ import annotations

import json
import traceback
from typing import Any

import structlog
from django.conf import settings
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from simlab.core.errors import (
    ApplicationError,
    ValidationFailed,
    code_for_status,
    error_envelope,
    pydantic_fields,
)

log = structlog.get_logger(__name__)


class EnvelopeResponse(JSONResponse):
    """JSON in ASCII: input echoed in a message may hold a lone surrogate, which UTF-8
    cannot encode (Starlette's JSONResponse then failed into a plain-text 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), default=str).encode("ascii")


def _json(
    status_code: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    return EnvelopeResponse(
        error_envelope(status_code=status_code, code=code, message=message, details=details),
        status_code=status_code,
        headers=headers,
    )


def _envelope(exc: ApplicationError, headers: Any = None) -> JSONResponse:
    return EnvelopeResponse(exc.envelope(), status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApplicationError)
    async def application_error(request: Request, exc: ApplicationError) -> JSONResponse:
        return _envelope(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A whole-body error has an empty path: name the body.
        fields = {
            path or "body": messages
            for path, messages in pydantic_fields(exc.errors(), skip=("body",)).items()
        }
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _json(400, "parse_error", "Malformed JSON in the request body.", fields)
        return _envelope(ValidationFailed.for_fields(fields, status_code=422))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _json(
            exc.status_code,
            code_for_status(exc.status_code),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_exception", path=request.url.path, method=request.method)
        # Read per request: DEBUG may differ between import time and now (tests).
        details = {"traceback": traceback.format_exception(exc)} if settings.DEBUG else {}
        return _json(
            500, "server_error", "An unexpected error occurred; it has been logged.", details
        )

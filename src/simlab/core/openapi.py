"""The error envelope in both OpenAPI documents: one schema, on every operation.

Django's (drf-spectacular, as a postprocessing hook) and FastAPI's (`openapi()` wrapped
in `simlab.compute.app`) run their generated document through `add_error_responses`, so a
client generator or a fuzzer knows every status an operation may answer and its body.
"""

from __future__ import annotations

from typing import Any

ENVELOPE = "ErrorEnvelope"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error of both APIs, whatever its status.",
    "required": ["error", "status_code", "timestamp", "request_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string", "description": "Names the field at fault."},
                "details": {"description": "Per-field messages or other context."},
            },
        },
        "status_code": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
        "request_id": {"type": "string"},
    },
}

ERROR_STATUSES: dict[str, str] = {
    "400": "Invalid input; `details` names each field at fault.",
    "401": "No credentials, or they do not hold (expired, revoked, deactivated).",
    "403": "The credential lacks the scope or the role.",
    "404": "No such object (or another organisation's).",
    "405": "Method not allowed on this path.",
    "406": "The requested representation is not available.",
    "409": "Conflicts with the object's state.",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
    "422": "Well-formed but not acceptable (e.g. an Idempotency-Key reused).",
    "429": "Throttled; `Retry-After` says when to come back.",
}

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def add_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Document every error status with the envelope on every operation of `document`
    (replacing any other error body a generator put there, e.g. FastAPI's 422)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components[ENVELOPE] = ENVELOPE_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ENVELOPE}"}
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[status] = {
                    "description": responses.get(status, {}).get("description", description),
                    "content": {"application/json": {"schema": reference}},
                }
    return document


def spectacular_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    return add_error_responses(result)

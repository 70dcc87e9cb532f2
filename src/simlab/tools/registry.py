"""The tool registry: name → (argument model, handler). One registry feeds every door
that offers tools (MCP, the assistant, any function-calling client)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from simlab.core.actor import Actor
from simlab.core.errors import ApplicationError, NotFound, ValidationFailed

# progress(done, total or None, message or None): a long tool's progress, called from
# the thread running the tool.
ProgressFn = Callable[[float, float | None, str | None], None]


@dataclass(frozen=True)
class ToolImage:
    data: bytes
    mime_type: str = "image/png"


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns: JSON-ready data, and pictures for doors that show them."""

    data: dict[str, Any]
    images: list[ToolImage] = field(default_factory=list)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[pydantic.BaseModel]
    # (actor, args) -> dict or ToolResult; a long tool also takes `progress=`.
    handler: Callable[..., dict[str, Any] | ToolResult]
    long: bool = False  # it may take minutes, and reports progress
    read_only: bool = False  # it changes nothing

    def json_schema(self) -> dict[str, Any]:
        # A copy: callers may change theirs; the generation itself (milliseconds) runs once.
        return copy.deepcopy(_arguments_schema(self.args_model))

    def schema(self) -> dict[str, Any]:
        """`{"name", "description", "parameters"}`: the common function-calling shape."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.json_schema(),
        }


@functools.cache
def _arguments_schema(args_model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = args_model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})  # function-calling servers want it, even empty
    return schema


TOOLS: dict[str, Tool] = {}


def tool(
    name: str,
    args_model: type[pydantic.BaseModel],
    *,
    long: bool = False,
    read_only: bool = False,
) -> Callable[[Any], Any]:
    """Register a handler; its docstring's first paragraph is the tool's description."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        description = " ".join((handler.__doc__ or "").strip().split("\n\n")[0].split())
        TOOLS[name] = Tool(name, description, args_model, handler, long, read_only)
        return handler

    return register


def tools() -> dict[str, Tool]:
    """Every registered tool by name."""
    _load()
    return TOOLS


def tool_schemas() -> list[dict[str, Any]]:
    _load()
    return [t.schema() for t in TOOLS.values()]


def call_tool(actor: Actor, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`run_tool`'s data (no pictures, no progress): for JSON-only callers."""
    return run_tool(actor, name, arguments).data


def run_tool(
    actor: Actor,
    name: str,
    arguments: Mapping[str, Any],
    *,
    progress: ProgressFn | None = None,
) -> ToolResult:
    """Validate `arguments` for tool `name` and run it as `actor` (raises ApplicationError);
    a long tool reports to `progress` as it goes."""
    _load()
    found = TOOLS.get(name)
    if found is None:
        raise NotFound(f"No tool named '{name}'.", details={"tools": sorted(TOOLS)})
    try:
        args = found.args_model.model_validate(dict(arguments))
    except pydantic.ValidationError as exc:
        details: dict[str, list[str]] = {}
        for error in exc.errors():
            details.setdefault(".".join(str(p) for p in error["loc"]), []).append(error["msg"])
        path, messages = next(iter(details.items()))
        raise ValidationFailed(f"Invalid input: {path}: {messages[0]}", details=details) from None
    if found.long:
        out = found.handler(actor, args, progress=progress or _no_progress)
    else:
        out = found.handler(actor, args)
    return out if isinstance(out, ToolResult) else ToolResult(out)


def tool_error(exc: ApplicationError) -> dict[str, Any]:
    """A refusal as a tool's result says it (to a model, over MCP or in the assistant)."""
    return {
        "code": exc.code,
        "message": exc.message,
        "status_code": exc.status_code,
        "details": exc.details,
    }


def _no_progress(done: float, total: float | None, message: str | None) -> None:
    return None


def _load() -> None:
    from simlab.tools import handlers  # noqa: F401 - registers the tools

"""The tool registry: name → (argument model, handler)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from simlab.core.actor import Actor
from simlab.core.errors import NotFound, ValidationFailed


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[pydantic.BaseModel]
    handler: Callable[[Actor, Any], dict[str, Any]]

    def json_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def schema(self) -> dict[str, Any]:
        """`{"name", "description", "parameters"}`: the common function-calling shape."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.json_schema(),
        }


TOOLS: dict[str, Tool] = {}


def tool(name: str, args_model: type[pydantic.BaseModel]) -> Callable[[Any], Any]:
    """Register a handler; its docstring's first paragraph is the tool's description."""

    def register(
        handler: Callable[[Actor, Any], dict[str, Any]],
    ) -> Callable[[Actor, Any], dict[str, Any]]:
        description = (handler.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        TOOLS[name] = Tool(name, description, args_model, handler)
        return handler

    return register


def tool_schemas() -> list[dict[str, Any]]:
    _load()
    return [t.schema() for t in TOOLS.values()]


def call_tool(actor: Actor, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `arguments` for tool `name` and run it as `actor` (raises ApplicationError)."""
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
        field, messages = next(iter(details.items()))
        raise ValidationFailed(f"Invalid input: {field}: {messages[0]}", details=details) from None
    return found.handler(actor, args)


def _load() -> None:
    from simlab.tools import handlers  # noqa: F401 - registers the tools

"""The MCP server: the tool registry's tools, a few resources and prompts.

Transport-agnostic: `/compute/mcp` (simlab.compute.mcp.http) and `simlab mcp` (stdio)
build the same server and differ only in how a call finds its actor. Every tool call
is `simlab.tools.run_tool` as that actor, so permissions, quotas and audit rows are the
services' own, with source `mcp`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    UnexpectedToolError,
)
from mcp_types import (
    CallToolResult,
    ContentBlock,
    ImageContent,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Tool as MCPTool

from simlab.core.actor import Actor
from simlab.core.context import current_request_id, new_request_id
from simlab.core.errors import ApplicationError, NotFound
from simlab.core.orm import run_orm
from simlab.tools import ToolResult, run_tool, tool_error, tools

logger = logging.getLogger(__name__)

NAME = "simlab"
INSTRUCTIONS = (
    "SimLab runs scientific simulations (DLA and other growth models, lattice models...) "
    "in projects of your organisation. list_projects and list_algorithms first; "
    "run_simulation queues a run, wait_for_simulation follows it to the end, "
    "get_result_picture shows it. run_parametric_study varies parameters; "
    "get_sweep_results gives its table. Resources: simlab://simulations/{id}, "
    "simlab://simulations/{id}/picture, simlab://sweeps/{id}/results."
)

# Who acts for a call: from the request's credential (HTTP) or the process's (stdio).
ActorOf = Callable[[], Actor]


class SimLabMCP(MCPServer[Any]):
    """An MCPServer whose tools are the registry's, listed and run as they are: one
    registry feeds every door, so there is no second list of tools to keep in step."""

    def __init__(self, actor_of: ActorOf, **kwargs: Any) -> None:
        super().__init__(NAME, instructions=INSTRUCTIONS, **kwargs)
        self._actor_of = actor_of
        _add_resources(self)
        _add_prompts(self)

    def actor(self) -> Actor:
        """The caller, with a request id of its own for this call (stdio has no request)."""
        actor = self._actor_of()
        return replace(actor, request_id=current_request_id() or new_request_id())

    async def list_tools(self) -> list[MCPTool]:
        return [
            MCPTool(
                name=t.name,
                description=t.description,
                input_schema=t.json_schema(),
                annotations=ToolAnnotations(
                    read_only_hint=t.read_only,
                    destructive_hint=False,
                    open_world_hint=False,
                ),
            )
            for t in tools().values()
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        try:
            actor = self.actor()
            found = tools().get(name)
            if found is not None and found.long and context is not None:
                result = await _run_reporting_progress(actor, name, arguments, context)
            else:
                result = await run_orm(run_tool, actor, name, arguments)
        except ApplicationError as exc:
            # A refusal is the model's to read and act on: a tool error, never a 500.
            return CallToolResult(
                content=[TextContent(text=exc.message)],
                structured_content={"error": tool_error(exc)},
                is_error=True,
            )
        except Exception as exc:
            # The SDK logs it and answers a generic error: no exception text leaves.
            raise UnexpectedToolError(f"Error executing tool {name}") from exc
        return tool_result(result)


def tool_result(result: ToolResult) -> CallToolResult:
    """The data as JSON text and as structured content; each image as image content."""
    content: list[ContentBlock] = [TextContent(text=json.dumps(result.data, default=str))]
    content.extend(
        ImageContent(data=base64.b64encode(image.data).decode(), mime_type=image.mime_type)
        for image in result.images
    )
    return CallToolResult(content=content, structured_content=result.data)


async def _run_reporting_progress(
    actor: Actor, name: str, arguments: Mapping[str, Any], context: Context[Any, Any]
) -> ToolResult:
    """Run a long tool in a worker thread; its progress callbacks come from that thread,
    so they are handed to this loop and sent from here, in order, before the result."""
    loop = asyncio.get_running_loop()
    updates: asyncio.Queue[tuple[float, float | None, str | None] | None] = asyncio.Queue()

    def progress(done: float, total: float | None, message: str | None) -> None:
        # RuntimeError: the loop is gone (shutdown), so nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(updates.put_nowait, (done, total, message))

    async def forward() -> None:
        while (update := await updates.get()) is not None:
            try:
                await context.report_progress(*update)
            except Exception:  # a client gone mid-call must not fail the tool
                logger.debug("progress notification not sent", exc_info=True)

    forwarding = asyncio.create_task(forward())
    try:
        return await run_orm(run_tool, actor, name, arguments, progress=progress)
    finally:
        # The thread's last call_soon_threadsafe is queued before run_orm returns, so the
        # sentinel comes after every update.
        updates.put_nowait(None)
        await forwarding


# --- resources ------------------------------------------------------------------------------
async def _read(server: SimLabMCP, tool: str, arguments: dict[str, Any]) -> ToolResult:
    """A resource is a read-only tool's answer: same selectors, same permission rules."""
    try:
        return await run_orm(run_tool, server.actor(), tool, arguments)
    except NotFound as exc:
        raise ResourceNotFoundError(exc.message) from None
    except ApplicationError as exc:
        raise ResourceError(exc.message) from None


def _object_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise ResourceNotFoundError(f"No such id: {raw!r}.")
    return int(raw)


def _add_resources(server: SimLabMCP) -> None:
    @server.resource(
        "simlab://simulations/{simulation_id}",
        name="simulation",
        description="One simulation: status, progress, parameters and metrics (JSON).",
        mime_type="application/json",
    )
    async def simulation(simulation_id: str) -> str:
        result = await _read(server, "get_simulation", {"simulation_id": _object_id(simulation_id)})
        return json.dumps(result.data, default=str)

    @server.resource(
        "simlab://simulations/{simulation_id}/picture",
        name="simulation_picture",
        description="The picture of a finished simulation's result (PNG).",
        mime_type="image/png",
    )
    async def simulation_picture(simulation_id: str) -> bytes:
        result = await _read(
            server, "get_result_picture", {"simulation_id": _object_id(simulation_id)}
        )
        if not result.images:
            raise ResourceError(f"Simulation {simulation_id} has no picture.")
        return result.images[0].data

    @server.resource(
        "simlab://sweeps/{sweep_id}/results",
        name="sweep_results",
        description="A parametric study's table: per point, metrics averaged over seeds (JSON).",
        mime_type="application/json",
    )
    async def sweep_results(sweep_id: str) -> str:
        result = await _read(server, "get_sweep_results", {"sweep_id": _object_id(sweep_id)})
        return json.dumps(result.data, default=str)


# --- prompts --------------------------------------------------------------------------------
def _add_prompts(server: SimLabMCP) -> None:
    @server.prompt(
        name="parameter_study",
        title="Study how a metric depends on a parameter",
        description="Plan, run and read a parametric study of one parameter.",
    )
    def parameter_study(
        project_id: str, algorithm: str, parameter: str, values: str, metric: str
    ) -> str:
        return (
            f"In SimLab project {project_id}, study how the metric '{metric}' of the "
            f"'{algorithm}' algorithm depends on its parameter '{parameter}', over the values "
            f"{values}.\n"
            "1. Call list_algorithms to check the parameter's name, range and default, and "
            "that the algorithm reports that metric.\n"
            "2. Call run_parametric_study with one axis for the parameter and "
            "seeds_per_point of at least 3, so each point has an error estimate.\n"
            "3. Follow it with get_sweep_results until every point is done (or wait on a "
            "few of its simulations with wait_for_simulation).\n"
            "4. Report a table of value -> mean and spread of the metric, say whether the "
            "dependence is monotonic, fit a simple law if one fits (power law, linear, "
            "saturation), and name the points whose spread is too wide to conclude."
        )

    @server.prompt(
        name="explain_simulation",
        title="Explain a simulation's result",
        description="Read one simulation and its picture, and explain what it shows.",
    )
    def explain_simulation(simulation_id: str) -> str:
        return (
            f"Read the resource simlab://simulations/{simulation_id} (or call "
            f"get_simulation) and, if it has finished, its picture "
            f"simlab://simulations/{simulation_id}/picture. Explain in a few sentences what "
            "the parameters were, what the metrics mean for this model, whether they are "
            "what theory predicts, and what the picture shows. If it failed, say why and "
            "what to change."
        )

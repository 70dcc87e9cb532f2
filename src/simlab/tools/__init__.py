"""AI tools: plain Python functions over the service layer, each with a JSON Schema.

`run_tool(actor, name, arguments)` validates the arguments with the tool's pydantic
model and calls the same services as every other door (`call_tool`: its JSON data
only); `tools()` / `tool_schemas()` list them for MCP, the assistant and any LLM
function-calling format.
"""

from simlab.tools.registry import (
    TOOLS,
    ProgressFn,
    Tool,
    ToolImage,
    ToolResult,
    call_tool,
    run_tool,
    tool_error,
    tool_schemas,
    tools,
)

__all__ = [
    "TOOLS",
    "ProgressFn",
    "Tool",
    "ToolImage",
    "ToolResult",
    "call_tool",
    "run_tool",
    "tool_error",
    "tool_schemas",
    "tools",
]

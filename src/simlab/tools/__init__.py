"""AI tools: plain Python functions over the service layer, each with a JSON Schema.

`call_tool(actor, name, arguments)` validates the arguments with the tool's pydantic
model and calls the same services as every other door; `tool_schemas()` lists the
tools for any LLM function-calling format (and for MCP).
"""

from simlab.tools.registry import TOOLS, Tool, call_tool, tool_schemas

__all__ = ["TOOLS", "Tool", "call_tool", "tool_schemas"]

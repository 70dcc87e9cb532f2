"""The agents' door over MCP: the tool registry as an MCP server (HTTP and stdio)."""

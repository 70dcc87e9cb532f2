"""`simlab mcp`: the MCP server over stdio, for local clients (Claude Desktop, IDEs...).

The same server as `/compute/mcp` (simlab.compute.mcp), run in this process against this
machine's SimLab database, acting for the owner of an API key. stdout carries the
protocol only: every diagnostic goes to stderr.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from simlab.cli._common import err_console, setup_django

if TYPE_CHECKING:
    from simlab.cli._common import Subparsers

API_KEY_ENV = "SIMLAB_API_KEY"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "mcp",
        help="serve SimLab's tools to an MCP client over stdio",
        description=(
            "Run SimLab's MCP server (tools, resources, prompts) over standard input and "
            "output, on this machine's SimLab database, acting as the owner of an API key "
            f"(--api-key or {API_KEY_ENV}; create one on the web UI's API keys page). Remote "
            "clients connect over HTTP instead: <server>/compute/mcp."
        ),
    )
    parser.add_argument("--api-key", help=f"the API key to act with (default: {API_KEY_ENV})")
    parser.set_defaults(handler=mcp_command)


def mcp_command(args: argparse.Namespace) -> int:
    key = args.api_key or os.environ.get(API_KEY_ENV)
    if not key:
        err_console.print(f"[red]Give an API key: --api-key or {API_KEY_ENV}.[/red]")
        return 2
    setup_django()
    import anyio

    from simlab.core.errors import NotAuthenticated

    try:
        anyio.run(_serve, key)
    except NotAuthenticated as exc:
        err_console.print(f"[red]Error: {exc.message}[/red] [dim]({exc.code})[/dim]")
        return 1
    return 0


async def _serve(key: str) -> None:
    from simlab.accounts.credentials import actor_from_token
    from simlab.compute.mcp.server import SimLabMCP
    from simlab.core.actor import Source

    # Checked once: a stdio server is one user's process, as a CLI login is.
    actor = await actor_from_token(key, source=Source.MCP, ip=None)
    server = SimLabMCP(lambda: actor, log_level="WARNING")
    await server.run_stdio_async()

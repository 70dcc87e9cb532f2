"""`simlab chat` (ask the assistant, its answer streamed) and `simlab demo-model` (a
scripted model server to try the assistant without a language model)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from simlab.cli._common import console, err_console
from simlab.cli._remote import handles_errors, make_client

if TYPE_CHECKING:
    from simlab.cli._common import Subparsers
    from simlab.client import AnswerEvent, SimLabClient

DEMO_PORT = 8090


def register(subparsers: Subparsers) -> None:
    chat = subparsers.add_parser(
        "chat",
        help="ask SimLab's assistant (it runs simulations with its tools, as you)",
        description=(
            "Ask the assistant; its answer streams as it is written, with the tools it "
            "calls (as you, with your permissions) shown on stderr. With MESSAGE, one "
            "question; without, a conversation until an empty line or Ctrl-D. Ctrl-C "
            "stops an answer. The server needs a model (SIMLAB_LLM_URL; try "
            "`simlab demo-model`)."
        ),
    )
    chat.add_argument("message", nargs="?", help="the question (default: ask interactively)")
    chat.add_argument("--conversation", type=int, help="go on with this conversation")
    chat.add_argument("--organization", type=int, help="organisation of a new conversation")
    chat.add_argument("--url", help="server URL (default: SIMLAB_URL or `simlab login`'s)")
    chat.set_defaults(handler=chat_command)

    demo = subparsers.add_parser(
        "demo-model",
        help="serve a scripted OpenAI-compatible model, to try the assistant",
        description=(
            "Serve SimLab's scripted chat completions model (it runs a sticking-probability "
            "study with the tools when asked to sweep it), then start the platform with "
            f"SIMLAB_LLM_URL=http://127.0.0.1:{DEMO_PORT}/v1."
        ),
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=DEMO_PORT)
    demo.set_defaults(handler=demo_model_command)


@handles_errors
def chat_command(args: argparse.Namespace) -> int:
    with make_client(args.url) as client:
        conversation = args.conversation or _new_conversation(client, args.organization)
        if args.message:
            return _ask(client, conversation, args.message)
        err_console.print(f"[dim]Conversation {conversation}. An empty line ends it.[/dim]")
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                return 0
            if not text:
                return 0
            _ask(client, conversation, text)


def _new_conversation(client: SimLabClient, organization: int | None) -> int:
    if organization is None:
        organization = client.me().organization
    if organization is None:
        first = next(client.projects(), None)
        if first is None:
            from simlab.client import SimLabError

            raise SimLabError(400, "no_organization", "You belong to no organisation yet.")
        organization = first.organization
    return int(client.create_conversation(organization)["id"])


def _ask(client: SimLabClient, conversation: int, text: str) -> int:
    """Stream one answer; 0 when it is done, 1 on an error, 130 when stopped."""
    try:
        for event in client.ask(conversation, text):
            status = _show(event)
            if status is not None:
                return status
    except KeyboardInterrupt:
        client.cancel_answer(conversation)
        err_console.print("\n[yellow]Stopped.[/yellow]")
        return 130
    return 0


def _show(event: AnswerEvent) -> int | None:
    data = event.data
    if event.type == "message.delta":
        console.print(data["text"], end="", soft_wrap=True)
        sys.stdout.flush()
    elif event.type == "tool.call":
        err_console.print(f"[dim]→ {data['name']} {data['arguments']}[/dim]")
    elif event.type == "tool.progress" and data.get("message"):
        err_console.print(f"[dim]  … {data['message']}[/dim]")
    elif event.type == "tool.result":
        mark = "✓" if data["ok"] else "✗"
        error = "" if data["ok"] else f": {data['result']['error']['message']}"
        err_console.print(f"[dim]{mark} {data['name']}{error}[/dim]")
    elif event.type == "done":
        console.print()
        return 0
    elif event.type == "error":
        console.print()
        err_console.print(f"[red]Error: {data['message']}[/red] [dim]({data['code']})[/dim]")
        return 1
    return None


def demo_model_command(args: argparse.Namespace) -> int:
    import uvicorn

    from simlab.assistant.scripted import create_app

    err_console.print(
        f"Scripted model at http://{args.host}:{args.port}/v1: start SimLab with "
        f"SIMLAB_LLM_URL=http://{args.host}:{args.port}/v1 and ask it to sweep the "
        "sticking probability."
    )
    uvicorn.run(create_app(chunk_delay_s=0.03), host=args.host, port=args.port, log_level="warning")
    return 0

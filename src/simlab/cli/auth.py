"""`simlab login` and `simlab logout`: the server and credentials the other commands use."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

from simlab.cli._common import console, err_console
from simlab.cli._remote import handles_errors

if TYPE_CHECKING:
    from simlab.cli._common import Subparsers

DEMO_USERNAME = "demo"  # what `simlab up` seeds on a fresh database (see cli/prestart.py)


def register(subparsers: Subparsers) -> None:
    login = subparsers.add_parser(
        "login",
        help="log in to a SimLab server (stores the URL and a refresh token or API key)",
        description=(
            "Log in with a username and password (prompted for) or an API key, and store "
            "the server URL with a refresh token (or the key) in "
            "~/.config/simlab/credentials.json, readable by you only. On a fresh "
            "`simlab up`, log in with the demo login it printed. SIMLAB_URL and "
            "SIMLAB_API_KEY override the file."
        ),
    )
    login.add_argument("--url", help="server URL (default: SIMLAB_URL, the stored one, or local)")
    login.add_argument("--username", "-u", help=f"username (prompted for; '{DEMO_USERNAME}' on "
                       "a fresh `simlab up`)")  # fmt: skip
    login.add_argument("--api-key", help="store this API key (slk_…) instead of a password login")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.set_defaults(handler=login_command)

    logout = subparsers.add_parser("logout", help="forget the stored credentials")
    logout.set_defaults(handler=logout_command)


@handles_errors
def login_command(args: argparse.Namespace) -> int:
    from simlab.client import SimLabClient
    from simlab.client.credentials import (
        DEFAULT_URL,
        StoredCredentials,
        load_credentials,
        save_credentials,
    )

    stored = load_credentials()
    url = args.url or os.environ.get("SIMLAB_URL") or (stored.url if stored else DEFAULT_URL)
    if args.api_key:
        with SimLabClient(url, api_key=args.api_key) as client:
            me = client.me()
        path = save_credentials(StoredCredentials(url=client.url or url, api_key=args.api_key))
    else:
        username = args.username or _ask_username(stored.username if stored else None)
        password = _read_password(args.password_stdin, username, url)
        with SimLabClient(url, username=username, password=password) as client:
            _, refresh = client.login()
            me = client.me()
        path = save_credentials(
            StoredCredentials(url=client.url or url, username=username, refresh_token=refresh)
        )
    console.print(f"Logged in to {client.url} as {me.username}.")
    console.print(f"[dim]Credentials saved in {path} (mode 0600).[/dim]")
    return 0


def _ask_username(default: str | None) -> str:
    default = default or DEMO_USERNAME
    if not sys.stdin.isatty():
        return default
    answer = input(f"Username [{default}]: ").strip()
    return answer or default


def _read_password(from_stdin: bool, username: str, url: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"Password for {username} at {url}: ")


def logout_command(args: argparse.Namespace) -> int:
    from simlab.client.credentials import credentials_path

    path = credentials_path()
    if path.exists():
        path.unlink()
        console.print(f"Removed {path}.")
    else:
        err_console.print("Not logged in (no stored credentials).")
    return 0

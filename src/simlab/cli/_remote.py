"""What the commands that talk to a server share: the client, errors, the project."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from simlab.cli._common import err_console

if TYPE_CHECKING:
    from simlab.client import Project, SimLabClient, SimLabError

F = TypeVar("F", bound=Callable[..., int])


def make_client(url: str | None = None) -> SimLabClient:
    """A client from --url, SIMLAB_URL / SIMLAB_API_KEY and the credentials file."""
    from simlab.client import SimLabClient, SimLabError
    from simlab.client.credentials import resolve

    base, options, _ = resolve(url=url)
    if not options:
        raise SimLabError(
            401,
            "not_logged_in",
            f"Not logged in to {base}: run `simlab login` (or set SIMLAB_API_KEY).",
        )
    return SimLabClient(base, **options)


def report(error: SimLabError, url: str | None = None) -> None:
    """A refusal or failure, said plainly on stderr."""
    from simlab.client import AuthenticationError, SimLabConnectionError

    if isinstance(error, SimLabConnectionError):
        err_console.print(f"[red]{error.message}[/red]\nIs the server running? (`simlab up`)")
        return
    err_console.print(f"[red]Error: {error.message}[/red] [dim]({error.code})[/dim]")
    details = error.details if isinstance(error.details, dict) else {}
    for field, messages in details.items():
        if isinstance(messages, list):
            for message in messages:
                err_console.print(f"  {field}: {message}")
    if isinstance(error, AuthenticationError):
        err_console.print("Log in with `simlab login` (or set SIMLAB_API_KEY).")


def handles_errors(handler: F) -> F:
    """The command's SimLabError becomes a message and exit status 1."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        from simlab.client import SimLabError

        try:
            return handler(*args, **kwargs)
        except SimLabError as error:
            report(error)
            return 1

    return wrapper  # type: ignore[return-value]


def choose_project(client: SimLabClient, project_id: int | None) -> Project:
    """The project given, or the caller's first one (and say so)."""
    from simlab.client import SimLabError

    if project_id is not None:
        return client.project(project_id)
    project = next(iter(client.projects()), None)
    if project is None:
        raise SimLabError(
            404,
            "no_project",
            "You have no project yet: create one in the web UI or with the API.",
        )
    err_console.print(
        f"[dim]Project {project.id} '{project.name}' (your first; --project to choose)[/dim]"
    )
    return project

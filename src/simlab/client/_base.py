"""Construction shared by the sync and async clients (both drivers of `_core.Api`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TypedDict, Unpack

from simlab.client._core import Api, Credentials, TokenCallback, normalise_url
from simlab.client.direct import DirectBackend
from simlab.client.errors import SimLabConnectionError, SimLabError
from simlab.core.actor import Actor

DEFAULT_TIMEOUT = 30.0
URL_ENV = "SIMLAB_URL"
API_KEY_ENV = "SIMLAB_API_KEY"


def _user_agent() -> str:
    try:
        return f"simlab-client/{version('simlab')}"
    except PackageNotFoundError:
        return "simlab-client"


class ClientOptions(TypedDict, total=False):
    """Keyword arguments of both clients (see `ClientBase`)."""

    api_key: str | None
    username: str | None
    password: str | None
    token: str | None
    refresh_token: str | None
    direct_actor: Actor | None
    use_direct: bool | None
    direct_threshold: int | None
    timeout: float
    on_tokens: TokenCallback | None
    reload_refresh: Callable[[], str | None] | None


class ClientBase:
    """Holds the configuration; subclasses perform the steps of `self._api`'s operations.

    Authenticate with one of `api_key`, `username` + `password`, `refresh_token` or
    `token` (an access JWT used as is). `direct_actor` adds the direct door (only in a
    process where Django is configured): batches larger than `SIMLAB_AI_DIRECT_THRESHOLD` go
    through the service layer as that actor when `SIMLAB_AI_USE_DIRECT_BACKEND` is on
    (`use_direct` and `direct_threshold` override the settings). Without `url` only the
    direct door is available.
    """

    def __init__(self, url: str | None = None, **options: Unpack[ClientOptions]) -> None:
        api_key = options.get("api_key")
        username = options.get("username")
        token = options.get("token")
        refresh_token = options.get("refresh_token")
        direct_actor = options.get("direct_actor")
        if url is None and direct_actor is None:
            url = os.environ.get(URL_ENV)
            if url is None:
                raise SimLabError(0, "no_server", f"No server URL: pass url= or set {URL_ENV}.", {})
        if url is not None and not any((api_key, username, token, refresh_token)):
            api_key = os.environ.get(API_KEY_ENV)
        self.url = normalise_url(url) if url else None
        self.timeout = options.get("timeout", DEFAULT_TIMEOUT)
        self.user_agent = _user_agent()
        credentials = Credentials(
            api_key=api_key,
            token=token,
            refresh_token=refresh_token,
            username=username,
            password=options.get("password"),
            on_tokens=options.get("on_tokens"),
            reload_refresh=options.get("reload_refresh"),
        )
        self._api = Api(
            credentials,
            rest_available=self.url is not None,
            direct=DirectBackend(direct_actor) if direct_actor is not None else None,
            use_direct=options.get("use_direct"),
            direct_threshold=options.get("direct_threshold"),
        )

    @property
    def credentials(self) -> Credentials:
        return self._api.credentials

    @property
    def has_direct_backend(self) -> bool:
        return self._api.direct is not None

    def _unreachable(self, exc: Exception) -> SimLabConnectionError:
        """A transport failure to the server, said as the client's connection error."""
        return SimLabConnectionError(0, "connection_error", f"Cannot reach {self.url}: {exc}", {})

    def _no_server(self) -> SimLabError:
        return SimLabError(
            0,
            "no_server",
            "This client has only the direct door (no url): it can create batches, nothing else.",
            {},
        )

    def __repr__(self) -> str:
        doors = ["rest"] if self.url else []
        if self.has_direct_backend:
            doors.append("direct")
        return f"<{type(self).__name__} {self.url or '(no server)'} doors={'+'.join(doors)}>"

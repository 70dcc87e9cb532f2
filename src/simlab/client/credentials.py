"""Where the client finds its server and credentials: environment, then a file.

`simlab login` writes `~/.config/simlab/credentials.json` (or under
`$XDG_CONFIG_HOME`; `SIMLAB_CREDENTIALS` names another file), readable by its
owner only (mode 0600): the server URL and either an API key or a refresh token.
`SIMLAB_URL` and `SIMLAB_API_KEY` override what the file says.

A refresh token rotates on every use; a client built from the file writes the new
one back, so the login lasts as long as it is used within the refresh lifetime, and
re-reads the file when its token is refused (another `simlab` command may have
rotated it meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from simlab.client._base import API_KEY_ENV, URL_ENV, ClientOptions
from simlab.client.errors import SimLabError

__all__ = [
    "CREDENTIALS_ENV",
    "DEFAULT_URL",
    "StoredCredentials",
    "credentials_path",
    "load_credentials",
    "resolve",
    "save_credentials",
]

CREDENTIALS_ENV = "SIMLAB_CREDENTIALS"
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class StoredCredentials:
    url: str
    username: str | None = None
    api_key: str | None = None
    refresh_token: str | None = None


def credentials_path() -> Path:
    explicit = os.environ.get(CREDENTIALS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "simlab" / "credentials.json"


def load_credentials(path: Path | None = None) -> StoredCredentials | None:
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SimLabError(0, "bad_credentials_file", f"Cannot read {path}: {exc}", {}) from exc
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise SimLabError(0, "bad_credentials_file", f"{path} has no server URL.", {})
    known = {"url", "username", "api_key", "refresh_token"}
    return StoredCredentials(**{k: v for k, v in data.items() if k in known})


def save_credentials(credentials: StoredCredentials, path: Path | None = None) -> Path:
    """Write atomically, readable by the owner only (0600, directory 0700)."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {k: v for k, v in asdict(credentials).items() if v is not None}
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def resolve(
    *, url: str | None = None, api_key: str | None = None
) -> tuple[str, ClientOptions, StoredCredentials | None]:
    """(url, client options, stored credentials) from arguments, environment, then file.

    With a refresh token from the file, the options carry an `on_tokens` callback
    that writes the rotated token back.
    """
    stored = load_credentials()
    url = url or os.environ.get(URL_ENV) or (stored.url if stored else None) or DEFAULT_URL
    api_key = api_key or os.environ.get(API_KEY_ENV)
    options: ClientOptions = {}
    if api_key:
        options["api_key"] = api_key
    elif stored is not None and _same_server(stored.url, url):
        if stored.api_key:
            options["api_key"] = stored.api_key
        elif stored.refresh_token:
            options["refresh_token"] = stored.refresh_token
            path = credentials_path()

            def persist(access: str, refresh: str) -> None:
                save_credentials(
                    StoredCredentials(stored.url, stored.username, None, refresh), path
                )

            def reload() -> str | None:
                current = load_credentials(path)
                same = current is not None and _same_server(current.url, url)
                return current.refresh_token if same and current is not None else None

            options["on_tokens"] = persist
            options["reload_refresh"] = reload
    return url, options, stored


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")

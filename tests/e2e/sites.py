"""Two SimLab sites on loopback for end-to-end tests: each a real `simlab up` on its own
var directory and embedded stack; A signed in over REST, B registered in A's registry
(with an API key of B's demo user) and checked."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.http import bearer, obtain_tokens
from tests.up import LOGIN_RE, running_up, wait_for_pages, wait_for_text

# Each site its own embedded stack (SQLite, its own broker), whatever stack the tests use:
# two sites must never share a database or a queue.
EMBEDDED = {
    "DATABASE_URL": "",
    "CELERY_BROKER_URL": "",
    "REDIS_URL": "",
    "SIMLAB_STACK": "embedded",
}
SITE_A = {**EMBEDDED, "SIMLAB_REMOTE_POLL_S": "0.5", "SIMLAB_REMOTE_BACKOFF_MAX_S": "1"}
# B's reaper re-runs what its killed worker held within seconds, not minutes.
SITE_B = {**EMBEDDED, "SIMLAB_HEARTBEAT_STALE_S": "3", "SIMLAB_REAP_INTERVAL_S": "1"}


@contextlib.contextmanager
def site(
    var_dir: Path, log_path: Path, env: dict[str, str], port: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`simlab up` on `var_dir` (on `port`: a restart where it was), once it serves."""
    var_dir.mkdir(parents=True, exist_ok=True)
    args = ("--port", str(port)) if port is not None else ()  # the last --port wins
    with running_up(var_dir, log_path, *args, env=env) as (process, url):
        if port is not None:
            url = f"http://127.0.0.1:{port}"
        wait_for_pages(process, url, log_path)
        wait_for_text(log_path, " ready.", process=process, timeout=90)
        yield process, url


def demo_login(log_path: Path) -> tuple[str, str]:
    """The demo user's username and password, as the site printed them on its first start."""
    match = LOGIN_RE.search(log_path.read_text())
    assert match is not None, log_path.read_text()
    return match.group(1), match.group(2)


def signed_client(url: str, log_path: Path) -> httpx.Client:
    """Signed in as the site's demo user."""
    tokens = obtain_tokens(url, *demo_login(log_path))
    return httpx.Client(base_url=url, headers=bearer(tokens["access"]), timeout=30)


def first_id(client: httpx.Client, path: str) -> int:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["results"][0]["id"])


def register(a: httpx.Client, b: httpx.Client, b_url: str, name: str = "site B") -> int:
    """B's API key, registered with B in A's registry; A checks it (up). Its id in A."""
    made = b.post(
        "/api/v1/api-keys/",
        json={"organization": first_id(b, "/api/v1/organizations/"), "name": "site A"},
    )
    assert made.status_code == 201, made.text
    registered = a.post(
        "/api/v1/registry/services/",
        json={
            "organization": first_id(a, "/api/v1/organizations/"),
            "name": name,
            "url": b_url,
            "kind": "simlab",
            "credentials": {"X-API-Key": made.json()["key"]},
        },
    )
    assert registered.status_code == 201, registered.text
    service_id = int(registered.json()["id"])
    checked = a.post(f"/api/v1/registry/services/{service_id}/test-connection/")
    assert checked.status_code == 200, checked.text
    assert checked.json()["ok"], checked.text
    return service_id

"""Small helpers for tests that speak HTTP to a served app."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def obtain_tokens(base_url: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token/",
        json={"username": username, "password": password},
        timeout=30,  # a server's first request on a busy machine
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def browser_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in through the HTML form, as a browser does (the form's CSRF token included);
    the client keeps the session and CSRF cookies."""
    page = client.get("/accounts/login/")
    return client.post(
        "/accounts/login/",
        data={"login": username, "password": password, "csrfmiddlewaretoken": csrf_token(page)},
        headers={"Referer": f"{client.base_url}/accounts/login/"},
    )


def assert_envelope(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is the one error envelope, with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "status_code", "timestamp", "request_id"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["status_code"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def reset_throttles() -> None:
    """Forget every request count of DRF's throttles (this run's only, on a shared Redis)."""
    from simlab.web.throttling import storage

    storage().reset()


def csrf_token(page: httpx.Response) -> str:
    """The CSRF token a page's form carries."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the page carries a CSRF token"
    return token.group(1)


def post_form(
    client: httpx.Client, path: str, data: dict[str, Any], *, form_on: str | None = None
) -> httpx.Response:
    """Post `data` to `path` as the form on page `form_on` (default: `path`) would, with its
    CSRF token and a same-origin Referer."""
    page = client.get(form_on or path)
    return client.post(
        path,
        data={**data, "csrfmiddlewaretoken": csrf_token(page)},
        headers={"Referer": f"{client.base_url}{form_on or path}"},
    )


def invalid_field(page: httpx.Response, name: str) -> str:
    """The HTML of form field `name` shown invalid on `page`: its input and its error."""
    for block in re.findall(r'<div class="field invalid">(.*?)</div>', page.text, re.S):
        if f'name="{name}"' in block:
            return str(block)
    raise AssertionError(f"no invalid field {name!r} on the page:\n{page.text[-3000:]}")


@contextlib.contextmanager
def browser_session(base_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """A client that signed in through the login form, as a browser does."""
    with httpx.Client(base_url=base_url, follow_redirects=True, timeout=60) as client:
        browser_login(client, username, password)
        yield client

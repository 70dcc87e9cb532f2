"""Registered services for tests, made through the service (so each has its state row)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from simlab.accounts.models import Organization
from simlab.core.actor import Actor
from simlab.registry.models import Service
from simlab.registry.probe import new_session
from simlab.registry.services import (
    Outgoing,
    notification_claim,
    notification_done,
    notification_send,
    service_create,
    service_test_connection,
)

_names = itertools.count()


def registered(url: str, *, organization: Organization | None = None, **fields: Any) -> Service:
    """A service registered by the system actor (shared when no organisation is given)."""
    fields.setdefault("name", f"service {next(_names)}")
    fields.setdefault("kind", "ga4gh-wes")
    return service_create(
        Actor.system(),
        organization_id=organization.pk if organization is not None else None,
        url=url,
        **fields,
    )


def wes_service(
    base_url: str,
    name: str,
    *,
    organization: Organization | None = None,
    checked: bool = True,
    **fields: Any,
) -> Service:
    """The scripted WES server `name` (of `fake_wes` at `base_url`) registered, and checked
    (up) unless told not to; with its state loaded."""
    service = registered(
        f"{base_url}/wes/{name}/ga4gh/wes/v1", organization=organization, name=name, **fields
    )
    if checked:
        assert service_test_connection(Actor.system(), service.pk).ok
    return Service.objects.select_related("state").get(pk=service.pk)


def set_mode(base_url: str, name: str, mode: str, delay_ms: float = 0) -> None:
    """Tell the scripted service how /named/<name> answers from now on."""
    httpx.post(f"{base_url}/control/{name}", json={"mode": mode, "delay_ms": delay_ms})


def hits(base_url: str, name: str) -> int:
    return int(httpx.get(f"{base_url}/hits/{name}").json())


def hooks(base_url: str, name: str) -> list[Any]:
    received: list[Any] = httpx.get(f"{base_url}/hooks/{name}").json()
    return received


def deliver(owner: str = "test-sender") -> list[Outgoing]:
    """Claim every pending notification and send it, as a checker's delivery round does
    (concurrently, through the one sender); the claimed ones."""
    claimed = notification_claim(owner)

    async def send_all() -> list[str]:
        async with new_session() as session:
            return list(await asyncio.gather(*(notification_send(session, o) for o in claimed)))

    errors = asyncio.run(send_all()) if claimed else []
    notification_done({o.id: e for o, e in zip(claimed, errors, strict=True)})
    return claimed

"""Delivering incident notifications. Each row is claimed by one sender with a
conditional update, so a notification goes out once however many checkers run; one
sender (`notification_send`) delivers every channel."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import apprise
from apprise import NotifyType
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from simlab.registry.models import Channel, Notification


@dataclass(frozen=True)
class Outgoing:
    id: int
    channel: str
    target: str
    payload: dict[str, Any]


# A claim not marked sent after this long was its sender's last act: another takes it
# (the one case where a message may go out twice: sent, then the sender died).
RECLAIM_AFTER_S = 300.0


def notification_claim(
    owner: str, *, limit: int = 100, now: datetime | None = None
) -> list[Outgoing]:
    """Claim up to `limit` unsent notifications for `owner` (none twice, across processes)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=RECLAIM_AFTER_S)
    pending = list(
        Notification.objects.filter(
            Q(claimed_by="") | Q(sent_at__isnull=True, claimed_at__lt=stale)
        )
        .select_related("incident__service")
        .order_by("id")[:limit]
    )
    claimed = []
    for row in pending:
        taken = Notification.objects.filter(
            pk=row.pk, claimed_by=row.claimed_by, claimed_at=row.claimed_at, sent_at__isnull=True
        ).update(claimed_by=owner, claimed_at=now)
        if taken != 1:
            continue  # another sender took it first
        incident = row.incident
        service = incident.service
        payload = {
            "event": f"incident.{row.event}",
            "service": {"id": service.pk, "name": service.name, "url": service.url},
            "incident": {
                "id": incident.pk,
                "opened_at": incident.opened_at.isoformat(),
                "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
                "cause": incident.cause,
            },
        }
        claimed.append(Outgoing(row.pk, row.channel, row.target, payload))
    return claimed


def notification_done(outcomes: dict[int, str]) -> None:
    """Record each claimed notification's outcome ("" sent, else the error)."""
    now = timezone.now()
    for pk, error in outcomes.items():
        Notification.objects.filter(pk=pk).update(sent_at=now, error=error)


# A target that does not answer within this long is recorded as failed.
SEND_TIMEOUT_S = 10.0


def _text(outgoing: Outgoing) -> tuple[str, str]:
    """The subject and body a person reads (e-mail, Apprise)."""
    service = outgoing.payload["service"]
    event = outgoing.payload["event"].removeprefix("incident.")
    subject = f"[SimLab] {service['name']} incident {event}"
    body = (
        f"Service {service['name']} ({service['url']}): incident "
        f"{outgoing.payload['incident']['id']} {event}.\n"
        f"Cause: {outgoing.payload['incident']['cause'] or 'n/a'}\n"
    )
    return subject, body


async def _webhook(session: aiohttp.ClientSession, outgoing: Outgoing) -> str:
    async with session.post(outgoing.target, json=outgoing.payload) as response:
        await response.read()
        return "" if response.status < 400 else f"status {response.status}"


def _email(outgoing: Outgoing) -> str:
    subject, body = _text(outgoing)
    send_mail(subject, body, None, [outgoing.target])
    return ""


def _apprise(outgoing: Outgoing) -> str:
    notifier = apprise.Apprise()
    if not notifier.add(outgoing.target):
        return "not an Apprise URL this server can send to"
    subject, body = _text(outgoing)
    opened = outgoing.payload["event"] == "incident.opened"
    result = notifier.notify(
        body=body,
        title=subject,
        notify_type=NotifyType.FAILURE if opened else NotifyType.SUCCESS,
        timeout=SEND_TIMEOUT_S,
        log_level=logging.WARNING,
    )
    if result:
        return ""
    # Apprise reports a failure in its log, not as an exception: keep what it said.
    said = "; ".join(entry.message for entry in result.logs())
    return f"apprise: {said or 'not delivered'}"


async def notification_send(session: aiohttp.ClientSession, outgoing: Outgoing) -> str:
    """Deliver one claimed notification by its channel (webhook, e-mail, Apprise): ""
    when sent, else the error. Never raises, so one failing target blocks no other."""
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            if outgoing.channel == Channel.WEBHOOK:
                return await _webhook(session, outgoing)
            if outgoing.channel == Channel.EMAIL:
                return await asyncio.to_thread(_email, outgoing)
            if outgoing.channel == Channel.APPRISE:
                # In a thread, like e-mail: Apprise loads its plugins and sends blocking,
                # and the checker's loop must keep its schedule meanwhile.
                return await asyncio.to_thread(_apprise, outgoing)
            return f"unknown channel {outgoing.channel}"
    except TimeoutError:
        return f"timeout after {SEND_TIMEOUT_S:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def apprise_shown(url: str) -> str:
    """An Apprise URL as it may be shown to anyone who reads the service: its secrets
    (tokens, passwords) masked by Apprise itself."""
    notifier = apprise.Apprise.instantiate(url)
    return notifier.url(privacy=True) if notifier is not None else "(invalid Apprise URL)"

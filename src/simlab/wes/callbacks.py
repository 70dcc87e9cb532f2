"""The callback extension: when a WES run with a `callback_url` ends, that URL receives a
POST of its status, signed with HMAC-SHA256. Best effort: one try per terminal transition,
a short timeout, off the caller's thread; pollers still see every state.

Signature: `X-WES-Signature: sha256=<hex of HMAC(secret, timestamp + "." + body)>`, with
the timestamp in `X-WES-Timestamp` (seconds), so a receiver can refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import structlog
from django.db import transaction

from simlab.simulations.models import FINISHED
from simlab.wes.models import WesRun
from simlab.wes.states import state_of

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-WES-Signature"
TIMESTAMP_HEADER = "X-WES-Timestamp"
TIMEOUT_S = 5.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, window_s: float = 300.0
) -> bool:
    """Whether a callback's headers (any case) sign `body` with `secret` within the window."""
    headers = {name.lower(): value for name, value in headers.items()}
    timestamp = str(headers.get(TIMESTAMP_HEADER.lower(), ""))
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > window_s:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, str(headers.get(SIGNATURE_HEADER.lower(), "")))


def _post(url: str, secret: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S)
        log.info("wes_callback_sent", run_id=payload["run_id"], status=response.status_code)
    except httpx.HTTPError as exc:
        log.warning("wes_callback_failed", run_id=payload["run_id"], error=str(exc))


def runs_finished(simulation_ids: Sequence[int]) -> None:
    """Call on every terminal transition of these simulations: after commit, the finished
    ones that asked for a callback get it (one query; none asked, nothing else happens)."""
    ids = list(simulation_ids)
    if not ids:
        return

    def send() -> None:
        runs = (
            WesRun.objects.filter(simulation_id__in=ids, simulation__status__in=FINISHED)
            .exclude(callback_url="")
            .select_related("simulation")
        )
        for run in runs:
            simulation = run.simulation
            payload = {
                "run_id": str(simulation.pk),
                "state": state_of(simulation.status).value,
                "end_time": simulation.finished_at.isoformat() if simulation.finished_at else "",
            }
            threading.Thread(
                target=_post,
                args=(run.callback_url, run.callback_secret, payload),
                name="wes-callback",
                daemon=True,
            ).start()

    transaction.on_commit(send)

"""Runs sent to a registered SimLab or WES service, mirrored onto their simulations.

A remote run is dispatched like a local one: its run task finds the `RemoteRun` link and
submits it through `WesClient` instead of claiming it (`submit`). The beat task `sync`
retries submits that are due and polls the unfinished runs in batches, with bounded
concurrency, mapping WES states through `simlab.wes.states`; endings go through the
local runs' finishing path (`execution._finish`: events, callbacks) and the sweep refresh.

Every row is taken under a short lease (`next_try_at`, set by one conditional UPDATE), so
overlapping beats or several workers never work on one run twice. A submit whose outcome
is unknown (the process died while sending) is looked for on the service by its tag
before it is sent again, so a retry never makes a second remote run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_scope
from simlab.audit.services import audit_record
from simlab.core.actor import Actor
from simlab.core.errors import ValidationFailed
from simlab.registry.models import Kind, Service
from simlab.registry.secrets import decrypt_headers
from simlab.simulations import events
from simlab.simulations.models import FINISHED, Phase, RemoteRun, Simulation, Status, attempt_path
from simlab.simulations.selectors import simulation_get, usable_now
from simlab.simulations.services import sweep_refresh_status
from simlab.usage.models import Kind as UsageKind
from simlab.usage.services import UsageFact
from simlab.wes.client import WES_PATH, State, WesClient, WesError
from simlab.wes.states import FINISHED_STATES, status_of

log = structlog.get_logger(__name__)

# The WES tag carrying this site's id for a submission: how a lost answer is found again.
TAG = "simlab_run"
# Result files fetched back from a SimLab service: the RunLog's link name, the field.
RESULT_FILES = {"npz": "result_npz", "png": "result_png"}
# Answers that say the service refused this request for good (others: try again later).
_TRANSIENT = frozenset({0, 401, 403, 408, 409, 423, 425, 429})


def _conf(name: str) -> Any:
    return settings.SIMLAB_REMOTE[name]


def is_remote(simulation_id: int) -> bool:
    return RemoteRun.objects.filter(simulation_id=simulation_id).exists()


def run_tag(run: RemoteRun) -> str:
    """This site, simulation and submission: unique across the sites using one service."""
    site = hmac.new(settings.SECRET_KEY.encode(), b"simlab.remote-site", hashlib.sha256)
    return f"{site.hexdigest()[:16]}:{run.simulation_id}:{run.submission}"


def _refused(error: WesError) -> bool:
    return error.status_code not in _TRANSIENT and 400 <= error.status_code < 500


def _site_root(url: str) -> str:
    """A SimLab service's site root (its URL may be the site or its WES root)."""
    return url.rstrip("/").removesuffix(WES_PATH)


def _same_origin(link: str, url: str) -> bool:
    """Credentials go only to the service's own host, whatever a RunLog's links say."""
    a, b = urlsplit(link), urlsplit(url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _take(ids: Iterable[int], *, now: datetime, **conditions: Any) -> list[int]:
    """Lease these runs (those not leased or backing off) for one round: one UPDATE, so
    of two takers each run goes to one."""
    lease = now + timedelta(seconds=3 * _conf("timeout_s") + 10)
    ids = list(ids)
    RemoteRun.objects.filter(
        Q(next_try_at__isnull=True) | Q(next_try_at__lte=now), pk__in=ids, **conditions
    ).update(next_try_at=lease)
    return list(
        RemoteRun.objects.filter(pk__in=ids, next_try_at=lease).values_list("pk", flat=True)
    )


# --- ending and mirroring, through the local runs' path ------------------------------------
def _running(simulation_id: int) -> int | None:
    """The simulation as RUNNING (claimed as a worker claims a local run, when the remote
    started it since the last poll): its attempt, or None once it has ended here."""
    row = Simulation.objects.filter(pk=simulation_id).values("status", "attempts").first()
    if row is None or row["status"] in FINISHED:
        return None
    if row["status"] == Status.RUNNING:
        return int(row["attempts"])
    # No heartbeat: the reaper's rescue of lost local workers never touches these rows.
    claimed = Simulation.objects.filter(
        pk=simulation_id, status__in=[Status.QUEUED, Status.CREATED]
    ).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        phase=Phase.RUNNING,
        progress=0.0,
    )
    if not claimed:
        return None
    events.publish_rows([simulation_id])
    attempt: int = Simulation.objects.values_list("attempts", flat=True).get(pk=simulation_id)
    return attempt


def _end(
    simulation_id: int, status: Status, files: dict[str, bytes] | None = None, **fields: Any
) -> bool:
    """End the simulation as the remote run ended (files: fetched results, stored as a
    local run stores its own); False if it had already ended here."""
    from simlab.simulations.execution import _finish, run_usage

    attempt = _running(simulation_id)
    if attempt is None:
        return False
    stored: dict[str, str] = {}
    usage: list[UsageFact] = []
    if files:
        simulation = Simulation.objects.select_related("project").get(pk=simulation_id)
        stems = {"npz": "result", "png": "picture"}
        for link, content in files.items():
            stored[RESULT_FILES[link]] = default_storage.save(
                attempt_path(simulation, stems[link], attempt), ContentFile(content)
            )
        # Computed elsewhere: only the storage its results take here is metered.
        stored_bytes = sum(len(content) for content in files.values())
        usage = run_usage(simulation, attempt, {UsageKind.STORAGE_BYTES: stored_bytes})
    if not _finish(simulation_id, attempt, status=status, usage=usage, **stored, **fields):
        for name in stored.values():
            default_storage.delete(name)
        return False
    sweep_id = Simulation.objects.values_list("sweep_id", flat=True).get(pk=simulation_id)
    sweep_refresh_status(sweep_id)
    return True


def _settle(run: RemoteRun, **fields: Any) -> None:
    RemoteRun.objects.filter(pk=run.pk).update(settled=True, next_try_at=None, **fields)


def _lost(run: RemoteRun, now: datetime, error: str) -> bool:
    """Past the deadline without an answer from the service: failed here (True)."""
    if (now - run.last_contact_at).total_seconds() <= _conf("lost_after_s"):
        return False
    since = run.last_contact_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    _end(
        run.simulation_id,
        Status.FAILED,
        error_message=f"Remote service unreachable since {since} ({error})."[:2000],
    )
    _settle(run, error=error[:2000])
    return True


def _retry_at(now: datetime, failures: int) -> datetime:
    return now + timedelta(seconds=min(2.0**failures, _conf("backoff_max_s")))


def _back_off(run: RemoteRun, now: datetime, error: str) -> None:
    tries = run.tries + 1
    RemoteRun.objects.filter(pk=run.pk).update(
        tries=tries, error=error[:2000], next_try_at=_retry_at(now, tries)
    )


# --- submitting ---------------------------------------------------------------------------
def _client(service: Service) -> WesClient:
    return WesClient(
        service.url,
        headers=decrypt_headers(service.credentials_encrypted),
        timeout=_conf("timeout_s"),
    )


FIND_PAGE = 100  # runs asked for per page when looking for a lost submit


async def _tags_of(client: WesClient, summary: dict[str, Any], gate: asyncio.Semaphore) -> Any:
    """A listed run's tags: its summary's (WES 1.1) when they carry ours, else its
    RunLog's (a server may list only some of them, as SimLab does)."""
    listed = summary.get("tags")
    if isinstance(listed, dict) and TAG in listed:
        return listed
    async with gate:
        run_log = await client.get_run(str(summary["run_id"]))
    return (run_log.get("request") or {}).get("tags") or {}


async def _find(client: WesClient, tag: str, algorithm: str, since: datetime) -> str | None:
    """The run made by an earlier submit of ours (found by its tag), if the service has it.
    The filters are SimLab's; another WES server lists all its runs, newest first, page
    by page (`next_page_token`): up to `find_max_runs` of them are looked at."""
    gate = asyncio.Semaphore(_conf("concurrency"))
    filters = {"algorithm": algorithm, "created_after": (since - timedelta(minutes=5)).isoformat()}
    token: str | None = None
    budget = _conf("find_max_runs")
    while budget > 0:
        page = await client.list_runs(page_size=min(FIND_PAGE, budget), page_token=token, **filters)
        runs = [s for s in page.get("runs") or [] if isinstance(s, dict) and "run_id" in s][:budget]
        budget -= len(runs)
        found = await asyncio.gather(*(_tags_of(client, summary, gate) for summary in runs))
        for summary, tags in zip(runs, found, strict=True):
            if isinstance(tags, dict) and tags.get(TAG) == tag:
                return str(summary["run_id"])
        token = page.get("next_page_token") or None
        if token is None or not runs:
            break
    return None


async def _send(run: RemoteRun, service: Service, simulation: Simulation, resend: bool) -> str:
    async with _client(service) as client:
        tag = run_tag(run)
        if resend and run.submit_started_at is not None:
            found = await _find(client, tag, simulation.algorithm, run.submit_started_at)
            if found is not None:
                return found
        return await client.submit(
            simulation.algorithm,
            simulation.parameters,
            tags={TAG: tag},
            workflow_engine_parameters={"seed": str(simulation.seed)},
        )


def submit(simulation_id: int) -> str | None:
    """Send a queued remote run to its service, once: "submitted", "retry" (backing off),
    "failed" (the service refused it), or None (nothing to send, or another has it)."""
    now = timezone.now()
    if not _take([simulation_id], now=now, remote_id="", settled=False):
        return None
    run = RemoteRun.objects.select_related("simulation__project", "service__state").get(
        pk=simulation_id
    )
    simulation, service = run.simulation, run.service
    if simulation.status != Status.QUEUED:
        if simulation.status in FINISHED:  # cancelled before it was sent
            _settle(run)
        else:  # CREATED: sent once queued
            RemoteRun.objects.filter(pk=run.pk).update(next_try_at=None)
        return None
    if service is None:
        _end(simulation_id, Status.FAILED, error_message="Its remote service was deleted.")
        _settle(run)
        return "failed"
    if not usable_now(service, now):
        # Down, disabled or behind an open breaker: kept queued, tried again later.
        error = f"Service {service.pk} is not usable now."
        if not _lost(run, now, error):
            _back_off(run, now, error)
        return "retry"
    resend = run.submit_started_at is not None
    if not resend:
        # Committed before sending: if no answer is recorded, the next try searches first.
        RemoteRun.objects.filter(pk=run.pk).update(submit_started_at=now)
        run.submit_started_at = now
    try:
        remote_id = asyncio.run(_send(run, service, simulation, resend))
    except WesError as exc:
        if _refused(exc):
            _end(
                simulation_id,
                Status.FAILED,
                error_message=f"Refused by {service.name}: {exc.msg}"[:2000],
            )
            _settle(run, error=exc.msg[:2000])
            return "failed"
        log.warning("remote_submit_failed", simulation_id=simulation_id, error=str(exc))
        if not _lost(run, now, str(exc)):
            _back_off(run, now, str(exc))
        return "retry"
    recorded = RemoteRun.objects.filter(pk=run.pk, remote_id="").update(
        remote_id=remote_id,
        remote_state=State.QUEUED,
        last_contact_at=timezone.now(),
        next_try_at=None,
        error="",
    )
    if not recorded and not RemoteRun.objects.filter(pk=run.pk).exists():
        # Cancelled and deleted here while it was being sent: nobody waits for it there.
        target = {"simulation_id": simulation_id, "service_id": service.pk, "remote_id": remote_id}
        cancel_there([{**target, "organization_id": simulation.project.organization_id}])
        return None
    audit_record(
        Actor.system(),
        "simulation.remote_submit",
        obj=simulation,
        organization_id=simulation.project.organization_id,
        details={"service_id": service.pk, "remote_id": remote_id},
    )
    log.info("remote_submitted", simulation_id=simulation_id, remote_id=remote_id)
    return "submitted"


# --- cancelling there, now ----------------------------------------------------------------
async def _cancel_all(services: dict[int, Service], targets: Sequence[dict[str, Any]]) -> list[str]:
    """Each target's cancel sent to its service: "" when it was, else why not."""
    gate = asyncio.Semaphore(_conf("concurrency"))
    outcomes = ["Its remote service was deleted."] * len(targets)

    async def one_service(service: Service, indexes: list[int]) -> None:
        async with _client(service) as client:

            async def one(index: int) -> None:
                async with gate:
                    try:
                        await client.cancel(str(targets[index]["remote_id"]))
                        outcomes[index] = ""
                    except WesError as exc:
                        outcomes[index] = f"{exc.status_code}: {exc.msg}"[:2000]

            await asyncio.gather(*(one(index) for index in indexes))

    by_service: dict[int, list[int]] = {}
    for index, target in enumerate(targets):
        if target["service_id"] in services:
            by_service.setdefault(target["service_id"], []).append(index)
    await asyncio.gather(*(one_service(services[pk], ix) for pk, ix in by_service.items()))
    return outcomes


def cancel_there(targets: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Cancel runs at their services now (`remote_cancel_after_commit`'s), best-effort:
    each outcome is audited, and kept on the run's link while it exists (a failed cancel
    of a run still here is sent again by `sync`). Counts of sent and failed."""
    if not targets:
        return {}
    services = {
        service.pk: service
        for service in Service.objects.filter(pk__in={t["service_id"] for t in targets})
    }
    outcomes = asyncio.run(_cancel_all(services, targets))
    now = timezone.now()
    counts = {"sent": 0, "failed": 0}
    for target, error in zip(targets, outcomes, strict=True):
        link = RemoteRun.objects.filter(
            simulation_id=target["simulation_id"], remote_id=target["remote_id"]
        )
        counts["failed" if error else "sent"] += 1
        # The link's outcome and its audit row are one fact: seen together or not at all.
        with transaction.atomic():
            if error:
                link.update(error=error)
            else:
                link.filter(cancel_sent_at=None).update(cancel_sent_at=now)
            audit_record(
                Actor.system(),
                "simulation.remote_cancel",
                # The row may be gone (deleted): the audit row names it all the same.
                obj=Simulation(pk=target["simulation_id"]),
                organization_id=target["organization_id"],
                details={
                    "service_id": target["service_id"],
                    "remote_id": target["remote_id"],
                    "sent": not error,
                    **({"error": error} if error else {}),
                },
            )
        if error:
            log.warning("remote_cancel_failed", **target, error=error)
    return counts


# --- polling --------------------------------------------------------------------------------
@dataclass
class _Seen:
    """What one poll learned about one run (network only; applied afterwards)."""

    state: State | None = None
    error: WesError | None = None
    cancel_sent: bool = False
    progress: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


async def _observe(
    run: RemoteRun,
    client: WesClient,
    http: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    down: list[WesError],
) -> _Seen:
    """`down`: shared by one service's runs; once it cannot be reached, the rest of its
    runs this round are not tried (a dead or hanging service costs one timeout)."""
    simulation, service = run.simulation, run.service
    assert service is not None
    seen = _Seen()
    async with gate:
        if down:
            seen.error = down[0]
            return seen
        try:
            wants_cancel = simulation.cancel_requested or simulation.status == Status.CANCELLED
            if wants_cancel and run.cancel_sent_at is None:
                await client.cancel(run.remote_id)
                seen.cancel_sent = True
            seen.state = await client.status(run.remote_id)
            if simulation.status in FINISHED:
                return seen
            if seen.state in FINISHED_STATES:
                run_log = await client.get_run(run.remote_id)
                outputs = run_log.get("outputs") or {}
                metrics = outputs.get("metrics")
                seen.metrics = metrics if isinstance(metrics, dict) else {}
                logs = (run_log.get("run_log") or {}).get("system_logs") or []
                seen.reason = "; ".join(str(line) for line in logs)
                if seen.state is State.COMPLETE and service.kind == Kind.SIMLAB:
                    seen.files = await _download(http, outputs.get("links") or {}, service.url)
            elif seen.state is State.RUNNING and service.kind == Kind.SIMLAB:
                seen.progress = await _progress(http, service.url, run.remote_id)
        except WesError as exc:
            seen.error = exc
        except httpx.HTTPError as exc:  # a result download
            seen.error = WesError(0, f"{type(exc).__name__}: {exc}")
        if seen.error is not None and seen.error.status_code == 0:
            down.append(seen.error)
    return seen


async def _download(http: httpx.AsyncClient, links: dict[str, Any], url: str) -> dict[str, bytes]:
    files = {}
    for name in RESULT_FILES:
        link = links.get(name)
        if isinstance(link, str) and _same_origin(link, url):
            response = await http.get(link)
            response.raise_for_status()
            files[name] = response.content
    return files


async def _progress(http: httpx.AsyncClient, url: str, remote_id: str) -> float | None:
    """A SimLab service's progress of the run (its REST API; WES has no such field)."""
    try:
        response = await http.get(f"{_site_root(url)}/api/v1/simulations/{remote_id}/")
        value = response.json().get("progress") if response.is_success else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


async def _observe_all(runs: Sequence[RemoteRun]) -> list[_Seen]:
    gate = asyncio.Semaphore(_conf("concurrency"))
    by_service: dict[int, list[int]] = {}
    for index, run in enumerate(runs):
        by_service.setdefault(run.service_id or 0, []).append(index)
    seen: list[_Seen] = [_Seen() for _ in runs]

    async def one_service(indexes: list[int]) -> None:
        service = runs[indexes[0]].service
        assert service is not None
        headers = decrypt_headers(service.credentials_encrypted)
        async with (
            _client(service) as client,
            httpx.AsyncClient(headers=headers, timeout=_conf("timeout_s")) as http,
        ):
            down: list[WesError] = []
            results = await asyncio.gather(
                *(_observe(runs[i], client, http, gate, down) for i in indexes)
            )
        for i, result in zip(indexes, results, strict=True):
            seen[i] = result

    await asyncio.gather(*(one_service(indexes) for indexes in by_service.values()))
    return seen


def _apply(run: RemoteRun, seen: _Seen, now: datetime) -> str:
    """Mirror one observation onto the simulation; what happened, for the round's counts."""
    simulation, service = run.simulation, run.service
    assert service is not None
    if seen.error is not None:
        error = seen.error
        if error.status_code == 404:
            _end(
                run.simulation_id,
                Status.FAILED,
                error_message=f"Run {run.remote_id} is gone from {service.name}.",
            )
            _settle(run, error=error.msg[:2000])
            return "failed"
        # Polled again after a back-off: a restarting service is not hammered.
        RemoteRun.objects.filter(pk=run.pk).update(
            poll_failures=run.poll_failures + 1,
            error=error.msg[:2000],
            last_polled_at=now,
            next_try_at=_retry_at(now, run.poll_failures + 1),
        )
        return "lost" if _lost(run, now, error.msg) else "unreachable"
    state = seen.state or State.UNKNOWN
    contact: dict[str, Any] = {
        "remote_state": state.value,
        "last_contact_at": now,
        "last_polled_at": now,
        "poll_failures": 0,
        "error": "",
        "next_try_at": None,
    }
    if seen.cancel_sent:
        contact["cancel_sent_at"] = now
    if simulation.status in FINISHED:
        # Ended here (cancelled): nothing more to say once the cancel went out.
        done = state in FINISHED_STATES or run.cancel_sent_at is not None or seen.cancel_sent
        RemoteRun.objects.filter(pk=run.pk).update(settled=done, **contact)
        return "settled" if done else "polled"
    RemoteRun.objects.filter(pk=run.pk).update(**contact)
    status = status_of(state)
    if status == Status.SUCCEEDED:
        _end(
            run.simulation_id,
            Status.SUCCEEDED,
            files=seen.files,
            progress=1.0,
            metrics=seen.metrics,
            error_message="",
        )
    elif status == Status.FAILED:
        reason = seen.reason or f"the remote run ended {state.value}"
        _end(run.simulation_id, Status.FAILED, error_message=f"On {service.name}: {reason}"[:2000])
    elif status == Status.CANCELLED:
        ours = run.cancel_sent_at is not None or seen.cancel_sent
        _end(
            run.simulation_id,
            Status.CANCELLED,
            error_message="Cancelled." if ours else f"Cancelled on {service.name}.",
        )
    elif status == Status.RUNNING:
        # _running publishes the move to RUNNING; a new progress is published here.
        fresh = simulation.status != Status.RUNNING
        attempt = _running(run.simulation_id)
        progress = seen.progress
        if attempt is not None and progress is not None and progress != simulation.progress:
            mine = Simulation.objects.filter(
                pk=run.simulation_id, attempts=attempt, status=Status.RUNNING
            )
            if mine.update(progress=min(max(progress, 0.0), 1.0)):
                events.publish_rows([run.simulation_id])
        if fresh and simulation.sweep_id is not None:
            sweep_refresh_status(simulation.sweep_id)
        return "running"
    else:
        return "polled"
    _settle(run)
    return "ended"


def sync(only: Collection[int] | None = None) -> dict[str, int]:
    """One round: send due submits, then poll a batch of unfinished runs (the least
    recently polled first) and mirror what they show; `only`: just these runs (by
    simulation id). Counts of what happened."""
    now = timezone.now()
    counts: dict[str, int] = {}
    batch = _conf("poll_batch")
    scope = RemoteRun.objects.all() if only is None else RemoteRun.objects.filter(pk__in=only)
    # Cancelled (or deleted) before they were sent: nothing to tell their service.
    scope.filter(remote_id="", settled=False, simulation__status__in=FINISHED).update(settled=True)
    due = scope.filter(
        Q(next_try_at__isnull=True) | Q(next_try_at__lte=now),
        remote_id="",
        settled=False,
        simulation__status=Status.QUEUED,
    ).values_list("pk", flat=True)[:batch]
    for pk in list(due):
        outcome = submit(pk)
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    candidates = (
        scope.filter(settled=False)
        .exclude(remote_id="")
        .order_by(F("last_polled_at").asc(nulls_first=True))
        .values_list("pk", flat=True)[:batch]
    )
    taken = _take(list(candidates), now=now)
    runs = list(
        RemoteRun.objects.filter(pk__in=taken).select_related("simulation", "service__state")
    )
    orphans = [run for run in runs if run.service is None]
    for run in orphans:
        _end(run.simulation_id, Status.FAILED, error_message="Its remote service was deleted.")
        _settle(run)
    runs = [run for run in runs if run.service is not None]
    if runs:
        for run, seen in zip(runs, asyncio.run(_observe_all(runs)), strict=True):
            outcome = _apply(run, seen, timezone.now())
            counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        log.info("remote_sync", **counts)
    return counts


def remote_sync_now(actor: Actor, simulation_ids: Sequence[int]) -> dict[str, int]:
    """Send or poll these simulations' remote runs now, as the beat's round does (the
    admin's "sync now"): the actor must be a member of each one's project (else 404).
    A run that another round holds or that is backing off is left to it. Counts of what
    happened."""
    require_scope(actor, "write")
    simulations = [simulation_get(actor, pk, minimum=Role.MEMBER) for pk in simulation_ids]
    linked = set(
        RemoteRun.objects.filter(pk__in=[s.pk for s in simulations]).values_list("pk", flat=True)
    )
    if not linked:
        raise ValidationFailed.for_fields({"simulation_ids": ["None of them runs remotely."]})
    counts = sync(only=linked)
    for simulation in simulations:
        if simulation.pk in linked:
            audit_record(
                actor,
                "simulation.remote_sync",
                obj=simulation,
                organization_id=simulation.project.organization_id,
                details={"counts": counts},
            )
    return counts

"""The Python client (sync and async) over real HTTP against the served platform, with a
real Celery worker: results, batches, sweeps, error envelopes, JWT refresh."""

from __future__ import annotations

import asyncio
import io
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image
from rest_framework_simplejwt.tokens import AccessToken

from simlab.accounts.models import Role, User
from simlab.client import (
    AsyncSimLabClient,
    AuthenticationError,
    NotFoundError,
    SimLabClient,
    SimLabError,
    SimLabTimeout,
    Simulation,
    SimulationSpec,
    ValidationError,
)
from simlab.projects.models import Project
from tests.factories import PASSWORD, ProjectFactory, api_key_for, member
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def _user_and_project() -> tuple[User, Project]:
    user = member(Role.MEMBER)
    return user, ProjectFactory(organization=user.memberships.get().organization)


def _api_key(user: User, project: Project) -> str:
    _, raw = api_key_for(user, project.organization)
    return raw


def _expired_access_token(user: User) -> str:
    token = AccessToken.for_user(user)
    token.set_iat(at_time=timezone.now() - timedelta(minutes=10))
    token.set_exp(from_time=timezone.now() - timedelta(minutes=10), lifetime=timedelta(minutes=1))
    return str(token)


@pytest.mark.slow
def test_sync_client_runs_a_simulation_and_downloads_its_results(
    asgi_server: ServedApp, celery_worker: WorkerProcess, tmp_path: Path
) -> None:
    user, project = _user_and_project()
    with SimLabClient(asgi_server.url, api_key=_api_key(user, project)) as client:
        assert client.me().username == user.username
        dla = client.algorithm("dla")
        assert dla.parameters["n_particles"]["type"] == "integer"
        assert "dla" in {a.name for a in client.algorithms()}
        assert [p.id for p in client.projects()] == [project.pk]

        created = client.create_simulation(project.pk, "dla", {"n_particles": 2000}, seed=5)
        assert created.status == "QUEUED"
        assert created.parameters["dimension"] == 2  # defaults filled in by the server

        seen: list[Simulation] = []
        done = client.wait(created.id, timeout=90, on_progress=seen.append, poll_interval=0.05)
        assert done.status == "SUCCEEDED", (done, celery_worker.output())
        assert done.progress == 1.0
        assert seen[-1] == done
        states = [(s.status, s.progress) for s in seen]
        assert all(a != b for a, b in itertools.pairwise(states))  # changes only
        assert 1.4 < done.metrics["fractal_dimension"] < 2.0

        npz = client.download_npz(done.id)
        assert isinstance(npz, bytes)
        assert np.load(io.BytesIO(npz))["positions"].shape == (2000, 2)

        png_path = client.download_png(done.id, tmp_path)  # a directory: the server's name
        assert png_path == tmp_path / "picture.png"
        picture = Image.open(png_path)
        assert picture.format == "PNG"
        assert np.asarray(picture.convert("L")).std() > 5  # not blank

        saved = client.download_metrics(done.id, tmp_path / "deep" / "m.json")
        assert isinstance(saved, Path)
        assert '"fractal_dimension"' in saved.read_text()
        assert client.metrics(done.id)["seed"] == 5

        listed = list(client.simulations(project.pk, status="SUCCEEDED"))
        assert [s.id for s in listed] == [done.id]
        assert list(client.simulations(project.pk, status="FAILED")) == []


@pytest.mark.slow
def test_async_client_batch_and_sweep_with_password_login(
    asgi_server: ServedApp, celery_worker: WorkerProcess
) -> None:
    user, project = _user_and_project()

    async def scenario() -> dict[str, Any]:
        progress: list[int] = []

        async def on_sweep(sweep: Any) -> None:  # async callbacks are awaited
            progress.append(sweep.completed)

        async with AsyncSimLabClient(
            asgi_server.url, username=user.username, password=PASSWORD
        ) as client:
            me = await client.me()
            batch = await client.create_simulations(
                project.pk,
                [
                    SimulationSpec("dla", {"n_particles": 300}, seed=1),
                    {"algorithm": "eden", "parameters": {"n_particles": 300}, "seed": 2},
                ],
            )
            finished = [await client.wait(i, timeout=60) for i in batch.ids]
            sweep = await client.create_sweep(
                project.pk,
                "dla",
                {"sticking_probability": [0.3, 1.0]},
                base_parameters={"n_particles": 200},
                seed=9,
            )
            done = await client.wait_sweep(sweep.id, timeout=90, on_progress=on_sweep)
            results = await client.sweep_results(sweep.id)
            page_sizes = [s.id async for s in client.simulations(project.pk, page_size=1)]
            return {
                "me": me,
                "batch": batch,
                "finished": finished,
                "sweep": done,
                "results": results,
                "ids": page_sizes,
                "progress": progress,
            }

    out = asyncio.run(scenario())
    assert out["me"].username == user.username
    assert out["batch"].count == 2
    assert out["batch"].backend == "rest"  # no direct door on this client
    assert [s.status for s in out["finished"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert [s.algorithm for s in out["finished"]] == ["dla", "eden"]
    assert out["sweep"].status == "SUCCEEDED"
    assert out["sweep"].completed == 2
    assert out["progress"][-1] == 2
    results = out["results"]
    assert [row.point for row in results.rows] == [
        {"sticking_probability": 0.3},
        {"sticking_probability": 1.0},
    ]
    assert "fractal_dimension" in results.metric_names
    header, rows = results.table()
    assert header[:3] == ["sticking_probability", "simulations", "completed"]
    assert [r[2] for r in rows] == [1, 1]
    # Every simulation of the project, one per page: the batch's two and the sweep's two.
    children = [c.id for c in out["sweep"].simulations]
    assert sorted(out["ids"]) == sorted([*out["batch"].ids, *children])


def test_error_envelopes_become_simlab_errors(asgi_server: ServedApp) -> None:
    user, project = _user_and_project()
    foreign = ProjectFactory()
    with SimLabClient(asgi_server.url, api_key=_api_key(user, project)) as client:
        with pytest.raises(ValidationError) as bad:
            client.create_simulation(project.pk, "dla", {"n_particles": -3})
        assert bad.value.status_code == 400
        assert bad.value.code == "validation_error"
        assert "parameters.n_particles" in bad.value.details
        assert "n_particles" in bad.value.message
        assert bad.value.request_id

        with pytest.raises(NotFoundError) as missing:
            client.create_simulation(foreign.pk, "dla", {"n_particles": 10})
        assert missing.value.status_code == 404
        assert missing.value.code == "not_found"

        with pytest.raises(NotFoundError):
            client.algorithm("no_such_thing")

        with pytest.raises(ValidationError) as batch:
            client.create_simulations(
                project.pk, [SimulationSpec("dla", {}), SimulationSpec("dla", {"lattice": "x"})]
            )
        assert "simulations.1.parameters.lattice" in batch.value.details

        with pytest.raises(ValidationError) as scalar:  # a value, not a list of them
            client.create_sweep(project.pk, "dla", {"sticking_probability": 0.1})
        assert "axes.0.values" in scalar.value.details

        created = client.create_simulation(project.pk, "eden", {"n_particles": 50}, queue=False)
        with pytest.raises(SimLabTimeout):
            client.wait(created.id, timeout=0.3, poll_interval=0.05)
        assert client.cancel(created.id).status == "CANCELLED"
        with pytest.raises(SimLabError) as conflict:
            client.cancel(created.id)
        assert (conflict.value.status_code, conflict.value.code) == (409, "conflict")
        assert client.retry(created.id).status == "QUEUED"

    with SimLabClient(asgi_server.url, api_key="slk_bad_key") as anonymous:
        with pytest.raises(AuthenticationError) as refused:
            anonymous.me()
        assert refused.value.code == "api_key_invalid"


def test_expired_access_token_is_refreshed_transparently(asgi_server: ServedApp) -> None:
    user, _ = _user_and_project()
    rotated: list[tuple[str, str]] = []
    with SimLabClient(
        asgi_server.url,
        username=user.username,
        password=PASSWORD,
        on_tokens=lambda access, refresh: rotated.append((access, refresh)),
    ) as client:
        access, refresh = client.login()
        assert rotated == [(access, refresh)]
        client.credentials.access = _expired_access_token(user)
        assert client.me().username == user.username  # 401 token_expired → refresh → retry
        assert len(rotated) == 2
        new_access, new_refresh = rotated[-1]
        assert client.credentials.access == new_access != access
        assert new_refresh != refresh  # the refresh token rotates

    # A client holding only a refresh token starts by exchanging it.
    with SimLabClient(asgi_server.url, refresh_token=new_refresh) as from_refresh:
        assert from_refresh.me().username == user.username
        # The used refresh token is blacklisted: a second client with it must log in again.
    with SimLabClient(asgi_server.url, refresh_token=new_refresh) as stale:
        with pytest.raises(AuthenticationError) as again:
            stale.me()
        assert "simlab login" in again.value.message

    # An explicit expired token with nothing to renew it: the envelope's code comes through.
    with SimLabClient(asgi_server.url, token=_expired_access_token(user)) as fixed:
        with pytest.raises(AuthenticationError) as expired:
            fixed.me()
        assert expired.value.code == "token_expired"


def test_a_run_is_tagged_and_noted_through_the_client(asgi_server: ServedApp) -> None:
    user, project = _user_and_project()
    with SimLabClient(asgi_server.url, api_key=_api_key(user, project)) as client:
        created = client.create_simulation(project.pk, "eden", {"n_particles": 100}, queue=False)
        tagged = client.annotate(created.id, tags=["Paper", "fig-2"], note="draft")
        assert (tagged.tags, tagged.note) == (["paper", "fig-2"], "draft")
        renoted = client.annotate(created.id, note="final")
        assert (renoted.tags, renoted.note) == (["paper", "fig-2"], "final")
        with pytest.raises(ValidationError) as bad:
            client.annotate(created.id, tags=["no,commas"])
        assert "tags" in bad.value.details

"""Result files in an S3-compatible store: the worker writes there, the API reads back.

The store is a real S3-compatible HTTP server on loopback (moto's server mode): object
storage is outside the platform, so a stand-in server is the honest test of the wiring.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from simlab.accounts.models import Role
from simlab.config.env import SimLabEnv, StorageSettings
from simlab.config.settings import default_storage_config
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import bearer, obtain_tokens
from tests.server import ServedApp
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

BUCKET = "simlab-results"
CREDENTIALS = {"SIMLAB_S3_ACCESS_KEY_ID": "test-key", "SIMLAB_S3_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        server.stop()


def _bucket_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["SIMLAB_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["SIMLAB_S3_SECRET_ACCESS_KEY"],
    )


@pytest.mark.worker
def test_results_go_to_the_bucket_and_download_through_the_api(
    asgi_server: ServedApp, s3_endpoint: str, settings: Any, tmp_path: Path
) -> None:
    s3 = _bucket_client(s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    env = {
        "SIMLAB_S3_BUCKET": BUCKET,
        "SIMLAB_S3_ENDPOINT_URL": s3_endpoint,
        "SIMLAB_S3_REGION": "us-east-1",
        "SIMLAB_S3_PREFIX": "results",
        **CREDENTIALS,
    }
    # The API server in this process reads the bucket the worker writes, same settings.
    configured = SimLabEnv(
        storage=StorageSettings(
            **{name.removeprefix("SIMLAB_S3_").lower(): v for name, v in env.items()}
        )
    )
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_config(configured)}
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]

    with (
        running_worker(tmp_path / "worker.log", beat=False, **env) as worker,
        httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client,
    ):
        created = client.post(
            f"/api/v1/projects/{project.pk}/simulations/",
            json={"algorithm": "dla", "parameters": {"n_particles": 1500}, "seed": 5},
        )
        assert created.status_code == 201, created.text
        simulation_id = created.json()["id"]

        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"/api/v1/simulations/{simulation_id}/").json()
            return body if body["status"] in ("SUCCEEDED", "FAILED") else None

        done = wait_for(finished, timeout=120)
        assert done["status"] == "SUCCEEDED", (done, worker.output())

        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        assert len(keys) == 2, keys
        assert all(key.startswith("results/") for key in keys)
        assert {Path(key).suffix for key in keys} == {".npz", ".png"}

        npz = client.get(done["links"]["npz"])
        assert npz.status_code == 200
        stored = s3.get_object(Bucket=BUCKET, Key=next(k for k in keys if k.endswith(".npz")))
        assert npz.content == stored["Body"].read()
        assert np.load(io.BytesIO(npz.content))["positions"].shape == (1500, 2)
        png = client.get(done["links"]["png"])
        assert png.status_code == 200
        assert png.content.startswith(b"\x89PNG")

"""Two SimLab sites on loopback, each a real `simlab up` on its own var directory: B is
registered in A and checked; a simulation and a 10-run sweep sent from A run on B and
show in A with mirrored status and fetched results; B is killed mid-run and started
again on the same var directory and port, and A's records still end consistent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import wait_for
from tests.e2e.sites import SITE_A, SITE_B, first_id, register, signed_client, site
from tests.up import descendants, wait_until_gone

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARAMETERS = {"n_particles": 2000}
FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED"}


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the site's whole process group (web, worker, beat): a crash, not a stop."""
    family = descendants(process.pid) | {process.pid}
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not wait_until_gone(family, timeout=15)


def test_runs_sent_from_a_to_b_are_mirrored_and_survive_b_restarting(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        b_process, b_url = stack.enter_context(site(tmp_path / "b", tmp_path / "b.log", SITE_B))
        _, a_url = stack.enter_context(site(tmp_path / "a", tmp_path / "a.log", SITE_A))
        b = stack.enter_context(signed_client(b_url, tmp_path / "b.log"))
        a = stack.enter_context(signed_client(a_url, tmp_path / "a.log"))

        service_id = register(a, b, b_url)

        project = first_id(a, "/api/v1/projects/")
        one = a.post(
            f"/api/v1/projects/{project}/simulations/",
            json={"algorithm": "dla", "parameters": PARAMETERS, "service_id": service_id},
        )
        assert one.status_code == 201, one.text
        sweep = a.post(
            f"/api/v1/projects/{project}/sweeps/",
            json={
                "algorithm": "dla",
                "base_parameters": PARAMETERS,
                "axes": [
                    {"parameter": "sticking_probability", "values": [0.1 * i for i in range(1, 11)]}
                ],
                "service_id": service_id,
            },
        )
        assert sweep.status_code == 201, sweep.text
        sweep_id = sweep.json()["id"]
        children = a.get(f"/api/v1/projects/{project}/simulations/?sweep={sweep_id}&page_size=100")
        ids = [one.json()["id"], *(row["id"] for row in children.json()["results"])]
        assert len(ids) == 11

        def statuses() -> dict[int, dict[str, Any]]:
            return {pk: a.get(f"/api/v1/simulations/{pk}/").json() for pk in ids}

        # Mid-run: B has started (A mirrors it) and not everything has ended yet.
        seen = wait_for(
            lambda: (
                (rows := statuses())
                and any(row["status"] in {"RUNNING", "SUCCEEDED"} for row in rows.values())
                and rows
            ),
            timeout=90,
            interval=0.2,
        )
        assert any(row["status"] not in FINISHED for row in seen.values()), seen
        port = urlsplit(b_url).port
        _kill(b_process)
        time.sleep(2)  # A polls a dead B meanwhile
        stack.enter_context(site(tmp_path / "b", tmp_path / "b2.log", SITE_B, port))

        final = wait_for(
            lambda: (
                (rows := statuses())
                and all(row["status"] in FINISHED for row in rows.values())
                and rows
            ),
            timeout=120,
            interval=0.5,
        )
        for row in final.values():
            assert row["status"] in {"SUCCEEDED", "FAILED"}, row
            if row["status"] == "FAILED":
                assert row["error_message"], row
        succeeded = [row for row in final.values() if row["status"] == "SUCCEEDED"]
        assert succeeded, final
        for row in succeeded:
            assert row["metrics"]["n_particles"] == 2000, row
            picture = a.get(row["links"]["png"])
            assert picture.status_code == 200
            assert picture.content.startswith(b"\x89PNG")
        counts = wait_for(
            lambda: (
                (body := a.get(f"/api/v1/sweeps/{sweep_id}/").json())["status"] in FINISHED and body
            ),
            timeout=30,
        )
        assert sum(counts["counts"].values()) == 10, counts
        # B ran each of them once: no run sent twice across its restart.
        runs = b.get("/ga4gh/wes/v1/runs", params={"page_size": 100, "algorithm": "dla"})
        tags = [
            b.get(f"/ga4gh/wes/v1/runs/{run['run_id']}").json()["request"]["tags"].get("simlab_run")
            for run in runs.json()["runs"]
        ]
        ours = [tag for tag in tags if tag]
        assert len(ours) == len(set(ours)) == 11, tags

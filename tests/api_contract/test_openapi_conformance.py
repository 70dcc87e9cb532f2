"""schemathesis over both OpenAPI specs, against the real platform server.

Bounded and deterministic (fixed seed, a few examples per operation): every generated
request, valid or not, must get an answer that is not a server error and that matches
the operation's documented responses (status codes and bodies, errors included).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories import ProjectFactory
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def _schemathesis(schema_url: str, base_url: str, token: str, report: Path, *options: str) -> str:
    """Run schemathesis (`options` go before the run command, e.g. `--config-file`)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", *options, "run", schema_url,
        "--url", base_url,
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "8",
        "--seed", "20261204",
        "--no-shrink",
        "--workers", "1",
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit", "--report-dir", str(report),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20_000:]
    # Every generated case passed every check (and some were generated at all).
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert summary is not None, output[-5000:]
    assert int(summary.group(1)) == int(summary.group(2)) > 100, summary.group(0)
    return output


@pytest.mark.slow
def test_the_rest_api_answers_as_its_schema_says(
    asgi_server: ServedApp, token: str, user: Any, tmp_path: Path
) -> None:
    ProjectFactory(organization=user.memberships.get().organization)
    output = _schemathesis(
        f"{asgi_server.url}/api/v1/schema/?format=json", asgi_server.url, token, tmp_path
    )
    assert "passed" in output


@pytest.mark.slow
def test_the_compute_api_answers_as_its_schema_says(
    asgi_server: ServedApp, token: str, tmp_path: Path
) -> None:
    output = _schemathesis(
        f"{asgi_server.url}/compute/openapi.json", asgi_server.url, token, tmp_path
    )
    assert "passed" in output

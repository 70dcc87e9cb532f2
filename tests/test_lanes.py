"""`make check`'s fast lane leaves out every test that starts workers or the platform."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE_MARKERS = re.compile(r"^FAST_MARKERS := (.+)$", re.MULTILINE)


def collected(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_the_fast_lane_leaves_out_worker_and_end_to_end_tests() -> None:
    match = MAKEFILE_MARKERS.search((ROOT / "Makefile").read_text())
    assert match, "FAST_MARKERS not in the Makefile"
    fast = collected("-m", match.group(1), "tests/cli", "tests/simulations", "tests/test_cli.py")
    everything = collected("tests/cli", "tests/simulations", "tests/test_cli.py")
    left_out = everything - fast
    # By the celery_worker fixture, by an explicit marker, by the simlab_up fixture.
    assert (
        "tests/simulations/test_rest_end_to_end.py::test_simulation_created_over_rest_runs_and_its_results_download"
        in left_out
    )
    assert any("test_worker_loss.py" in test for test in left_out)
    assert any("test_up_serves_the_platform" in test for test in left_out)
    # Unit tests stay in the lane.
    assert any("test_supervisor_stops_the_others" in test for test in fast)
    assert any("tests/simulations/test_services.py" in test for test in fast)

"""The algorithm registry under concurrent first use, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FIRST_USE = textwrap.dedent(
    """
    import threading
    from simlab.engine.registry import UnknownAlgorithm, get_algorithm

    barrier = threading.Barrier(20)
    outcomes = []

    def first_lookup():
        barrier.wait()
        try:
            outcomes.append(get_algorithm("dla").name)
        except UnknownAlgorithm as error:
            outcomes.append(f"unknown {error}")

    threads = [threading.Thread(target=first_lookup) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sorted(outcomes))
    """
)


def test_concurrent_first_lookups_all_find_the_builtin_models() -> None:
    """20 threads of a new process ask for 'dla' at once: every one finds it (the
    registry was once marked loaded before its import had finished)."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == str(["dla"] * 20), done.stdout + done.stderr

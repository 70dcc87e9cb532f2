"""Preloaded by the compute pool's fork server, and imported nowhere else.

Importing this module loads the engine and its aggregate kernels (from Numba's disk
cache, or compiled once) in the fork server, so every worker forked from it starts warm:
starting a run costs a fork, not a fresh interpreter importing NumPy and Numba.
Failures are swallowed: a worker then loads what it needs on its first run.
"""

from __future__ import annotations

import contextlib

with contextlib.suppress(Exception):
    from simlab import engine

    for _name in ("dla", "eden"):
        with contextlib.suppress(Exception):
            engine.run(_name, {"n_particles": 3}, seed=0)

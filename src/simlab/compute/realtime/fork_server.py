"""Preloaded by the compute pool's fork server, and imported nowhere else.

Importing this module prepares the fork server for the workers forked from it:

- a session of its own, at ordinary priority: Linux (autogroups) shares CPU between
  sessions first and between the tasks of a session second, so workers left in the
  server's session would use up that session's share and its event loop would wait
  behind them (measured: runnable but waiting for a CPU a third of the time, with 100
  busy workers). The group is not niced: interactive runs are what a user is waiting
  for, and must not starve behind batch work on a busy machine;
- the engine and its aggregate kernels loaded (from Numba's disk cache, or compiled
  once), so every worker starts warm: starting a run costs a fork, not a fresh
  interpreter importing NumPy and Numba.

Failures are swallowed: the workers then share the server's session, or load what they
need on their first run.
"""

from __future__ import annotations

import contextlib
import os

with contextlib.suppress(OSError):
    os.setsid()

with contextlib.suppress(Exception):
    from simlab import engine

    for _name in ("dla", "eden"):
        with contextlib.suppress(Exception):
            engine.run(_name, {"n_particles": 3}, seed=0)

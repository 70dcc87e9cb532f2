"""WES run states and simulation statuses, mapped both ways in one table.

`STATE_OF_STATUS` is what a SimLab simulation shows as a WES run; `STATUS_OF_STATE` is
what a WES run (ours or another server's) is as a simulation, for runs mirrored from a
remote service (the remote-run code reuses both).
"""

from __future__ import annotations

from simlab.simulations.models import Phase, Status
from simlab.wes.client import State

__all__ = ["STATE_OF_STATUS", "STATUS_OF_STATE", "State", "state_of", "status_of"]


STATE_OF_STATUS: dict[Status, State] = {
    # Created without queueing: held until someone queues it.
    Status.CREATED: State.PAUSED,
    Status.QUEUED: State.QUEUED,
    Status.RUNNING: State.RUNNING,
    Status.SUCCEEDED: State.COMPLETE,
    Status.FAILED: State.EXECUTOR_ERROR,
    Status.CANCELLED: State.CANCELED,
}

# RUNNING splits by what the run is doing: loading its kernels, or asked to stop.
RUNNING_STATES: dict[State, dict[str, object]] = {
    State.INITIALIZING: {"phase": Phase.COMPILING, "cancel_requested": False},
    State.CANCELING: {"cancel_requested": True},
}

STATUS_OF_STATE: dict[State, Status | None] = {
    State.PAUSED: Status.CREATED,
    State.QUEUED: Status.QUEUED,
    State.INITIALIZING: Status.RUNNING,
    State.RUNNING: Status.RUNNING,
    State.CANCELING: Status.RUNNING,  # still running until it stops
    State.COMPLETE: Status.SUCCEEDED,
    State.EXECUTOR_ERROR: Status.FAILED,
    State.SYSTEM_ERROR: Status.FAILED,
    State.CANCELED: Status.CANCELLED,
    State.PREEMPTED: Status.QUEUED,  # the system took the capacity back; it runs again
    State.UNKNOWN: None,  # no news: a mirror keeps what it had
}

FINISHED_STATES = frozenset(
    {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED}
)


def state_of(status: str, *, phase: str = "", cancel_requested: bool = False) -> State:
    """The WES state of a simulation with this status (phase and cancel flag refine RUNNING)."""
    try:
        state = STATE_OF_STATUS[Status(status)]
    except ValueError:
        return State.UNKNOWN
    if state is State.RUNNING:
        if cancel_requested:
            return State.CANCELING
        if phase == Phase.COMPILING:
            return State.INITIALIZING
    return state


def status_of(state: str) -> Status | None:
    """The simulation status of a WES state (None: unknown, keep the current one)."""
    try:
        return STATUS_OF_STATE[State(state)]
    except ValueError:
        return None

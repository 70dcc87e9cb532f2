"""Python client of SimLab: `SimLabClient` (blocking) and `AsyncSimLabClient` (asyncio).

Both drive one implementation (`simlab.client._core`): the same requests, the same
authentication (API key; username + password with transparent JWT refresh; refresh
or access token), the same error type (`SimLabError`, from the server's envelope)
and the same typed results (pydantic models).

    from simlab.client import SimLabClient

    with SimLabClient("http://127.0.0.1:8000", api_key="slk_…") as client:
        project = next(client.projects())
        sim = client.create_simulation(project, "dla", {"n_particles": 5000})
        done = client.wait(sim.id, timeout=120, on_progress=lambda s: print(s.progress))
        client.download_png(done.id, "cluster.png")

Importing this package does not import Django; the direct door (`direct_actor=`,
`SimLabClient.direct(actor)`) needs a process where Django is configured.
"""

from simlab.client._core import choose_backend
from simlab.client.aio import AsyncSimLabClient
from simlab.client.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SimLabConnectionError,
    SimLabError,
    SimLabTimeout,
    ValidationError,
)
from simlab.client.models import (
    Algorithm,
    AnswerEvent,
    BatchCreated,
    Me,
    Project,
    Simulation,
    SimulationSpec,
    Sweep,
    SweepResults,
    SweepRow,
)
from simlab.client.sync import SimLabClient

__all__ = [
    "Algorithm",
    "AnswerEvent",
    "AsyncSimLabClient",
    "AuthenticationError",
    "BatchCreated",
    "ConflictError",
    "Me",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "RateLimitedError",
    "ServerError",
    "SimLabClient",
    "SimLabConnectionError",
    "SimLabError",
    "SimLabTimeout",
    "Simulation",
    "SimulationSpec",
    "Sweep",
    "SweepResults",
    "SweepRow",
    "ValidationError",
    "choose_backend",
]

"""Every change to simulations and sweeps, whichever door it comes through.

Each function checks the actor's role and scope, validates parameters with the
engine's pydantic model, enforces quotas, writes one audit row and enqueues work
only after the transaction commits. Split by sub-domain; every door imports from here.
"""

from simlab.simulations.services.deletion import simulation_delete, sweep_delete
from simlab.simulations.services.interactive import (
    InteractiveRun,
    interactive_run_charge,
    interactive_run_check,
    interactive_run_payer,
    interactive_slot_release,
    interactive_slot_renew,
    interactive_slot_take,
)
from simlab.simulations.services.lifecycle import (
    simulation_annotate,
    simulation_cancel,
    simulation_queue,
    simulation_retry,
    sweep_cancel,
)
from simlab.simulations.services.quotas import (
    _enforce_quotas,
    _Usage,
    _usage_sql,
    _writable_project,
)
from simlab.simulations.services.simulations import (
    simulation_create,
    simulation_create_batch,
)
from simlab.simulations.services.sweeps import (
    sweep_create,
    sweep_points,
    sweep_refresh_status,
    sweeps_settle,
)
from simlab.simulations.services.validation import (
    MAX_SEED,
    SimulationSpec,
    specs_from,
    validate_parameters,
)

__all__ = [
    "MAX_SEED",
    "InteractiveRun",
    "SimulationSpec",
    "_Usage",
    "_enforce_quotas",
    "_usage_sql",
    "_writable_project",
    "interactive_run_charge",
    "interactive_run_check",
    "interactive_run_payer",
    "interactive_slot_release",
    "interactive_slot_renew",
    "interactive_slot_take",
    "simulation_annotate",
    "simulation_cancel",
    "simulation_create",
    "simulation_create_batch",
    "simulation_delete",
    "simulation_queue",
    "simulation_retry",
    "specs_from",
    "sweep_cancel",
    "sweep_create",
    "sweep_delete",
    "sweep_points",
    "sweep_refresh_status",
    "sweeps_settle",
    "validate_parameters",
]

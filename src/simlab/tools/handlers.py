"""The tools themselves: each translates arguments and calls one service or selector."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from simlab import engine
from simlab.core.actor import Actor
from simlab.core.errors import Conflict
from simlab.projects.selectors import project_list
from simlab.simulations import selectors, services
from simlab.simulations.models import (
    FINISHED,
    Simulation,
    Status,
    current_phase,
    sweep_status_of,
)
from simlab.tools.registry import ProgressFn, ToolImage, ToolResult, tool

WAIT_POLL_S = 0.5
T = TypeVar("T")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSimulationArgs(_Args):
    project_id: int = Field(description="Project to run in.")
    algorithm: str = Field(description="Algorithm name, e.g. 'dla' (see the algorithms list).")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Algorithm parameters; omitted ones take defaults."
    )
    seed: int | None = Field(default=None, ge=0, description="Random seed; random if omitted.")
    service_id: int | None = Field(
        default=None,
        ge=1,
        description="Run it on this registered service (simlab or ga4gh-wes); omit: here.",
    )


class Axis(_Args):
    parameter: str = Field(description="Parameter to vary.")
    values: list[Any] = Field(min_length=1, description="Values it takes.")


class RunParametricStudyArgs(_Args):
    project_id: int = Field(description="Project to run in.")
    algorithm: str = Field(description="Algorithm name.")
    axes: list[Axis] = Field(
        min_length=1, description="Parameters to vary: one axis, or several for a full grid."
    )
    base_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters shared by every run."
    )
    seeds_per_point: int = Field(default=1, ge=1, le=1000, description="Repeats per point.")
    seed: int | None = Field(default=None, ge=0, description="Base seed of the study.")
    name: str = Field(default="", max_length=200, description="A name for the study.")
    service_id: int | None = Field(
        default=None, ge=1, description="Run every run on this registered service; omit: here."
    )


class GetSimulationArgs(_Args):
    simulation_id: int = Field(description="Simulation id.")


class ListSimulationsArgs(_Args):
    project_id: int = Field(description="Project to list.")
    status: Status | None = Field(default=None, description="Only this status.")
    algorithm: str | None = Field(default=None, description="Only this algorithm.")
    sweep_id: int | None = Field(default=None, description="Only children of this study.")
    created_after: datetime | None = Field(default=None, description="Created at or after.")
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many, newest first.")


class GetSweepResultsArgs(_Args):
    sweep_id: int = Field(description="Parametric study id.")


class NoArgs(_Args):
    pass


class WaitForSimulationArgs(_Args):
    simulation_id: int = Field(description="Simulation id.")
    timeout_s: float = Field(
        default=120, gt=0, le=600, description="Give up waiting after this many seconds."
    )


class WaitForStudyArgs(_Args):
    sweep_id: int = Field(description="Parametric study id.")
    timeout_s: float = Field(
        default=300, gt=0, le=1800, description="Give up waiting after this many seconds."
    )


class AnnotateSimulationArgs(_Args):
    simulation_id: int = Field(description="Simulation id.")
    tags: list[str] = Field(default_factory=list, description="Its tags (replacing them).")
    note: str = Field(default="", description="A free-text note.")


def _poll(look: Callable[[], tuple[bool, T]], timeout_s: float) -> tuple[bool, T]:
    """`look()` every WAIT_POLL_S until it says finished or `timeout_s` passed (it is
    always called once more at the deadline); its last (finished, value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        finished, value = look()
        if finished or time.monotonic() >= deadline:
            return finished, value
        time.sleep(min(WAIT_POLL_S, max(0.0, deadline - time.monotonic())))


def simulation_summary(simulation: Simulation) -> dict[str, Any]:
    return {
        "id": simulation.pk,
        "project_id": simulation.project_id,
        "sweep_id": simulation.sweep_id,
        "algorithm": simulation.algorithm,
        "parameters": simulation.parameters,
        "seed": simulation.seed,
        "status": simulation.status,
        "phase": current_phase(simulation.status, simulation.phase),
        "progress": simulation.progress,
        "metrics": simulation.metrics,
        "error_message": simulation.error_message,
        "attempts": simulation.attempts,
        "created_at": simulation.created_at.isoformat(),
        "finished_at": simulation.finished_at.isoformat() if simulation.finished_at else None,
        "remote": _remote(simulation),
    }


def _remote(simulation: Simulation) -> dict[str, Any] | None:
    """Where it runs when sent to a registered service (REST's `remote`); None: here."""
    remote = selectors.remote_of(simulation)
    if remote is not None and remote["last_sync_at"] is not None:
        remote["last_sync_at"] = remote["last_sync_at"].isoformat()
    return remote


@tool("run_simulation", RunSimulationArgs)
def run_simulation(actor: Actor, args: RunSimulationArgs) -> dict[str, Any]:
    """Create and queue one simulation; returns its id and status (poll get_simulation)."""
    simulation = services.simulation_create(
        actor,
        project_id=args.project_id,
        algorithm=args.algorithm,
        parameters=args.parameters,
        seed=args.seed,
        service_id=args.service_id,
    )
    return simulation_summary(simulation)


@tool("run_parametric_study", RunParametricStudyArgs)
def run_parametric_study(actor: Actor, args: RunParametricStudyArgs) -> dict[str, Any]:
    """Run a parameter sweep (one parameter or a grid); returns the study id and size."""
    sweep = services.sweep_create(
        actor,
        project_id=args.project_id,
        algorithm=args.algorithm,
        axes=[axis.model_dump() for axis in args.axes],
        base_parameters=args.base_parameters,
        seeds_per_point=args.seeds_per_point,
        seed=args.seed,
        name=args.name,
        service_id=args.service_id,
    )
    return {
        "sweep_id": sweep.pk,
        "algorithm": sweep.algorithm,
        "total": sweep.total,
        "status": sweep.status,
        "axes": sweep.axes,
    }


@tool("list_projects", NoArgs, read_only=True)
def list_projects(actor: Actor, args: NoArgs) -> dict[str, Any]:
    """Projects you can see (id, name, organisation): where simulations run."""
    projects = project_list(actor).select_related("organization").order_by("name")
    return {
        "projects": [
            {
                "id": project.pk,
                "name": project.name,
                "organization": project.organization.name,
                "organization_id": project.organization_id,
                "archived": project.archived_at is not None,
            }
            for project in projects[:500]
        ]
    }


@tool("list_algorithms", NoArgs, read_only=True)
def list_algorithms(actor: Actor, args: NoArgs) -> dict[str, Any]:
    """The simulation models that can run, each with its parameters' JSON Schema (names,
    types, units, defaults, limits)."""
    return {
        "algorithms": [
            {
                "name": algorithm.name,
                "title": algorithm.title,
                "description": algorithm.description,
                "result_kind": algorithm.kind,
                "parameters": algorithm.json_schema(),
            }
            for algorithm in sorted(engine.algorithms().values(), key=lambda a: a.name)
        ]
    }


@tool("get_simulation", GetSimulationArgs, read_only=True)
def get_simulation(actor: Actor, args: GetSimulationArgs) -> dict[str, Any]:
    """One simulation: status, progress, parameters and metrics."""
    return simulation_summary(selectors.simulation_get(actor, args.simulation_id))


@tool("wait_for_simulation", WaitForSimulationArgs, long=True, read_only=True)
def wait_for_simulation(
    actor: Actor, args: WaitForSimulationArgs, *, progress: ProgressFn
) -> dict[str, Any]:
    """Wait until a simulation has finished (or `timeout_s` passed), reporting its
    progress; returns it as get_simulation does, with `finished`."""

    def look() -> tuple[bool, dict[str, Any]]:
        simulation = selectors.simulation_get(actor, args.simulation_id)
        phase = current_phase(simulation.status, simulation.phase)
        progress(simulation.progress, 1.0, f"{simulation.status} {phase or ''}".strip())
        return simulation.status in FINISHED, simulation_summary(simulation)

    finished, summary = _poll(look, args.timeout_s)
    return {**summary, "finished": finished}


@tool("get_result_picture", GetSimulationArgs, read_only=True)
def get_result_picture(actor: Actor, args: GetSimulationArgs) -> ToolResult:
    """The picture of a finished simulation's result (PNG, 800 px): the cluster, the
    lattice or the plotted series."""
    simulation = selectors.simulation_get(actor, args.simulation_id)
    if not simulation.result_ready("result_png"):
        raise Conflict(
            f"Simulation {simulation.pk} has no picture: it is {simulation.status}.",
            details={"status": simulation.status},
        )
    with simulation.result_png.open("rb") as picture:
        data = picture.read()
    return ToolResult(
        {"simulation_id": simulation.pk, "algorithm": simulation.algorithm, "bytes": len(data)},
        [ToolImage(data, "image/png")],
    )


@tool("cancel_simulation", GetSimulationArgs)
def cancel_simulation(actor: Actor, args: GetSimulationArgs) -> dict[str, Any]:
    """Stop a queued or running simulation (it ends CANCELLED)."""
    return simulation_summary(services.simulation_cancel(actor, args.simulation_id))


@tool("retry_simulation", GetSimulationArgs)
def retry_simulation(actor: Actor, args: GetSimulationArgs) -> dict[str, Any]:
    """Queue a FAILED or CANCELLED simulation again, with the same parameters and seed."""
    return simulation_summary(services.simulation_retry(actor, args.simulation_id))


@tool("annotate_simulation", AnnotateSimulationArgs)
def annotate_simulation(actor: Actor, args: AnnotateSimulationArgs) -> dict[str, Any]:
    """Set a simulation's tags and note (to find and explain it later)."""
    simulation = services.simulation_annotate(
        actor, args.simulation_id, tags=args.tags, note=args.note
    )
    return {**simulation_summary(simulation), "tags": simulation.tag_list, "note": simulation.note}


@tool("list_simulations", ListSimulationsArgs, read_only=True)
def list_simulations(actor: Actor, args: ListSimulationsArgs) -> dict[str, Any]:
    """Simulations of a project, newest first, with optional filters."""
    qs = selectors.simulation_list(
        actor,
        project_id=args.project_id,
        status=args.status,
        algorithm=args.algorithm,
        sweep_id=args.sweep_id,
        created_after=args.created_after,
    )
    rows = list(qs[: args.limit])
    return {"count": len(rows), "simulations": [simulation_summary(s) for s in rows]}


@tool("get_sweep_results", GetSweepResultsArgs, read_only=True)
def get_sweep_results(actor: Actor, args: GetSweepResultsArgs) -> dict[str, Any]:
    """A parametric study's status and aggregate table: per point, each metric's mean and
    spread over seeds."""
    return selectors.sweep_results(actor, args.sweep_id)


@tool("wait_for_parametric_study", WaitForStudyArgs, long=True, read_only=True)
def wait_for_parametric_study(
    actor: Actor, args: WaitForStudyArgs, *, progress: ProgressFn
) -> dict[str, Any]:
    """Wait until every run of a parametric study has finished (or `timeout_s` passed),
    reporting how many have; returns the counts by status, with `finished`."""

    def look() -> tuple[bool, dict[str, Any]]:
        sweep = selectors.sweep_get(actor, args.sweep_id)
        counts = selectors.sweep_status_counts(sweep)
        done = sum(n for status, n in counts.items() if status in FINISHED)
        progress(done, sweep.total, f"{done} of {sweep.total} runs finished")
        # The status from the counts read here: the sweep's own row follows its children
        # a moment after the last one finishes.
        status = sweep_status_of(counts) or sweep.status
        state = {"sweep_id": sweep.pk, "status": status, "total": sweep.total}
        return done >= sweep.total, {**state, "counts": counts}

    finished, state = _poll(look, args.timeout_s)
    return {**state, "finished": finished}


@tool("cancel_parametric_study", GetSweepResultsArgs)
def cancel_parametric_study(actor: Actor, args: GetSweepResultsArgs) -> dict[str, Any]:
    """Stop every unfinished run of a parametric study."""
    return {"sweep_id": args.sweep_id, **services.sweep_cancel(actor, args.sweep_id)}


# --- surrogate models (simlab.analytics) ------------------------------------------------


class TrainSurrogateArgs(_Args):
    project_id: int = Field(description="Project whose runs it learns from.")
    name: str = Field(max_length=200, description="Model name; a new version if it exists.")
    target: str = Field(max_length=200, description="Metric to predict, e.g. radius_of_gyration.")
    inputs: list[str] = Field(
        min_length=1, max_length=10, description="Parameters it is a function of."
    )
    sweep_ids: list[int] = Field(
        default_factory=list, max_length=100, description="Studies to learn from (or algorithm)."
    )
    algorithm: str = Field(default="", description="Or: every succeeded run of this algorithm.")
    tag: str = Field(default="", description="With algorithm: only runs with this tag.")
    level: float = Field(default=0.9, description="Coverage of its intervals (0.5 to 0.99).")


class _WhichModel(_Args):
    model_id: int = Field(description="Surrogate model id.")
    alias: str | None = Field(default=None, description="Version alias (default 'current').")
    version_id: int | None = Field(default=None, description="Or this version id.")


class PredictMetricArgs(_WhichModel):
    points: list[dict[str, float]] = Field(
        min_length=1, max_length=10_000, description="Points: {parameter: value} each."
    )


class SuggestRunsArgs(_WhichModel):
    k: int = Field(ge=1, le=100, description="How many runs to suggest.")
    axes: dict[str, list[float]] | None = Field(
        default=None, description="{parameter: values}: choose among this grid's points."
    )
    candidates: list[dict[str, float]] | None = Field(
        default=None, description="Or choose among these points."
    )
    target: float | None = Field(
        default=None, description="Steer toward this metric value; omit: the most uncertain."
    )


@tool("train_surrogate", TrainSurrogateArgs)
def train_surrogate(actor: Actor, args: TrainSurrogateArgs) -> dict[str, Any]:
    """Queue the training of a surrogate model of a metric from parametric studies (or an
    algorithm's runs): a Gaussian process or gradient boosting, chosen by cross-validation,
    with calibrated intervals; refused when it predicts worse than the mean."""
    from simlab.analytics import services as analytics

    version = analytics.surrogate_train(actor, **args.model_dump())
    return {
        "model_id": version.model_id,
        "version_id": version.pk,
        "number": version.number,
        "status": version.status,
    }


@tool("predict_metric", PredictMetricArgs, read_only=True)
def predict_metric(actor: Actor, args: PredictMetricArgs) -> dict[str, Any]:
    """A surrogate model's prediction of its metric at one or many points: the mean and an
    interval (of the model's coverage level) per point, without running anything."""
    from simlab.analytics import services as analytics

    return analytics.surrogate_predict(
        actor,
        model_id=args.model_id,
        points=args.points,
        alias=args.alias,
        version_id=args.version_id,
    )


@tool("suggest_runs", SuggestRunsArgs, read_only=True)
def suggest_runs(actor: Actor, args: SuggestRunsArgs) -> dict[str, Any]:
    """The next k runs worth making, by a surrogate model: where its intervals are widest
    away from the runs already made, or (with target) where the metric may reach it."""
    from simlab.analytics import services as analytics

    return analytics.surrogate_suggest(
        actor,
        model_id=args.model_id,
        k=args.k,
        axes=args.axes,
        candidates=args.candidates,
        target=args.target,
        alias=args.alias,
        version_id=args.version_id,
    )


class AdaptiveStudyArgs(_Args):
    project_id: int = Field(description="Project to run in.")
    algorithm: str = Field(description="Algorithm name, e.g. 'dla'.")
    axes: dict[str, list[float]] = Field(
        min_length=1, description="{parameter: values}: the grid the runs are chosen from."
    )
    target: str = Field(description="Metric the model learns, e.g. radius_of_gyration.")
    name: str = Field(max_length=200, description="Name of the surrogate model it trains.")
    base_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters shared by every run."
    )
    start: int = Field(default=9, ge=3, le=1000, description="Runs of the first round.")
    k: int = Field(default=5, ge=1, le=100, description="Runs per later round.")
    budget: int = Field(default=50, ge=3, le=1000, description="Stop after this many runs.")
    accuracy: float | None = Field(
        default=None, gt=0, description="Stop once the model's CV RMSE is at most this."
    )
    timeout_s: float = Field(default=1800, gt=0, le=7200, description="Give up after this.")


@tool("run_adaptive_study", AdaptiveStudyArgs, long=True)
def run_adaptive_study(
    actor: Actor, args: AdaptiveStudyArgs, *, progress: ProgressFn
) -> dict[str, Any]:
    """A parametric study run in rounds: a spread-out first round, then each round the
    runs a surrogate model is least sure of, until the model reaches `accuracy` (its
    cross-validated RMSE) or `budget` runs are made; returns every round's model figures."""
    from simlab.analytics.adaptive import adaptive_study_run

    return adaptive_study_run(actor, **args.model_dump(), progress=progress)

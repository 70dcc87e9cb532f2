"""Simulations from the command line: `simlab run`, `sweep`, `list`, `show`, `cancel`.

They talk to a server through `simlab.client` (over REST, like any other client):
`simlab login` first, or set SIMLAB_URL and SIMLAB_API_KEY. `run` and `sweep` build
their parameter options from the algorithm's JSON Schema fetched from the server,
so `simlab run dla --help` lists the parameters of `dla` as that server knows them.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.cli._common import console, emit_json, err_console, json_output
from simlab.cli._remote import choose_project, handles_errors, make_client
from simlab.cli.params import add_schema_options, collect_parameters, parse_vary
from simlab.client.plots import PREFERRED_METRIC, plotted_metric

if TYPE_CHECKING:
    from rich.progress import Progress

    from simlab.cli._common import Subparsers
    from simlab.client import Algorithm, SimLabClient, Simulation, Sweep, SweepResults

RESULTS_DIR = Path("simlab-results")
JSON_HELP = "print one JSON document on stdout (everything else goes to stderr)"


# --- parsers --------------------------------------------------------------------------------
def _base_parser(command: str, *, add_help: bool) -> argparse.ArgumentParser:
    if command == "run":
        description = (
            "Create a simulation of ALGORITHM; with --wait, follow its progress and save "
            "picture.png, result.npz and metrics.json."
        )
    else:
        description = (
            "Run ALGORITHM over a range (or grid) of parameter values; with --wait, follow "
            "it and save results.csv, results.json and a plot."
        )
    parser = argparse.ArgumentParser(
        prog=f"simlab {command}",
        description=description,
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("algorithm", metavar="ALGORITHM", nargs="?", help="e.g. dla")
    parser.add_argument("--project", type=int, help="project id (default: your first project)")
    parser.add_argument("--seed", type=int, help="random seed (default: random)")
    parser.add_argument("--wait", action="store_true", help="wait for the end, then save results")
    parser.add_argument(
        "--out", type=Path, help=f"where to save results (default ./{RESULTS_DIR}/…)"
    )
    parser.add_argument("--url", help="server URL (default: SIMLAB_URL or `simlab login`'s)")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    parser.add_argument(
        "--param",
        action="append",
        nargs="+",
        metavar="NAME VALUE",
        help="set any parameter: --param NAME VALUE or --param NAME=VALUE",
    )
    parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    if command == "sweep":
        parser.add_argument(
            "--vary",
            action="append",
            default=[],
            metavar="PARAM=V1,V2,…",
            help="a parameter and its values; repeat for a grid",
        )
        parser.add_argument(
            "--seeds-per-point", type=int, default=1, help="runs per point (default 1)"
        )
        parser.add_argument("--name", default="", help="a name for the sweep")
        parser.add_argument(
            "--metric", help=f"metric to plot (default {PREFERRED_METRIC} or the first)"
        )
    return parser


def _full_parser(command: str, algorithm: Algorithm) -> argparse.ArgumentParser:
    parser = _base_parser(command, add_help=True)
    parser.description = f"{parser.description}\n\n{algorithm.name}: {algorithm.title}. " + (
        algorithm.description or ""
    )
    add_schema_options(parser, algorithm.parameters, f"parameters of {algorithm.name}")
    return parser


def _passthrough(command: str) -> Callable[[list[str]], int]:
    def main(argv: list[str]) -> int:
        return _dynamic(command, argv)

    return main


PASSTHROUGH = {"run": _passthrough("run"), "sweep": _passthrough("sweep")}


def register(subparsers: Subparsers) -> None:
    # `run` and `sweep` parse their own arguments (their options come from the server);
    # these entries list them in `simlab --help`.
    for command, summary in (
        ("run", "run a simulation (simlab run ALGORITHM --help lists its parameters)"),
        ("sweep", "run a parameter sweep (--vary PARAM=v1,v2,…) and tabulate/plot it"),
    ):
        parser = subparsers.add_parser(command, help=summary, add_help=False)
        parser.add_argument("args", nargs=argparse.REMAINDER)
        parser.set_defaults(handler=lambda ns, c=command: _dynamic(c, list(ns.args)))

    listing = subparsers.add_parser("list", help="list simulations of a project")
    listing.add_argument("--project", type=int, help="project id (default: your first project)")
    listing.add_argument("--status", type=str.upper, help="QUEUED, RUNNING, SUCCEEDED, …")
    listing.add_argument("--algorithm", help="only this algorithm")
    listing.add_argument("--sweep", type=int, help="only the simulations of this sweep")
    listing.add_argument("--limit", type=int, default=20, help="at most N (default 20)")
    listing.add_argument("--all", action="store_true", help="every one (no --limit)")
    listing.add_argument("--url", help="server URL")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(handler=list_command)

    show = subparsers.add_parser("show", help="details and metrics of a simulation")
    show.add_argument("id", type=int)
    show.add_argument("--out", type=Path, help="also save its result files in this directory")
    show.add_argument("--url", help="server URL")
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    show.set_defaults(handler=show_command)

    cancel = subparsers.add_parser("cancel", help="cancel a simulation")
    cancel.add_argument("id", type=int)
    cancel.add_argument("--url", help="server URL")
    cancel.set_defaults(handler=cancel_command)


@handles_errors
def _dynamic(command: str, argv: list[str]) -> int:
    from simlab.client import SimLabError

    base = _base_parser(command, add_help=False)
    known, _ = base.parse_known_args(argv)
    wants_help = "-h" in argv or "--help" in argv
    if known.algorithm is None:
        parser = _base_parser(command, add_help=True)
        parser.epilog = _algorithms_epilog(known.url)
        if wants_help:
            parser.print_help()
            return 0
        parser.print_usage(err_console.file)
        err_console.print(f"simlab {command}: an ALGORITHM is required.\n{parser.epilog}")
        return 2
    try:
        client = make_client(known.url)
    except SimLabError as error:
        if not wants_help:
            raise
        return _help_without_server(command, known.algorithm, error)
    with client:
        try:
            algorithm = client.algorithm(known.algorithm)
        except SimLabError as error:
            if not wants_help:
                raise
            return _help_without_server(command, known.algorithm, error)
        parser = _full_parser(command, algorithm)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help or a usage error, already printed
            return exit_.code if isinstance(exit_.code, int) else 0
        try:
            parameters = collect_parameters(args, algorithm.parameters, args.param)
            axes = parse_vary(args.vary, algorithm.parameters) if command == "sweep" else []
        except ValueError as exc:
            parser.print_usage(err_console.file)
            err_console.print(f"simlab {command}: {exc}")
            return 2
        if command == "run":
            return _run(client, algorithm, parameters, args)
        if not axes:
            err_console.print("simlab sweep: give at least one --vary PARAM=v1,v2,…")
            return 2
        return _sweep(client, algorithm, parameters, axes, args)


def _help_without_server(command: str, algorithm: str, error: Exception) -> int:
    _base_parser(command, add_help=True).print_help()
    console.print(f"\n(the parameters of {algorithm} come from the server: {error})")
    return 0


def _algorithms_epilog(url: str | None) -> str:
    from simlab.client import SimLabError

    try:
        with make_client(url) as client:
            names = [f"  {a.name:<22} {a.title}" for a in client.algorithms()]
    except SimLabError:
        return "Algorithms: see `simlab run ALGORITHM --help` once logged in."
    return "Algorithms:\n" + "\n".join(names)


# --- run ------------------------------------------------------------------------------------
def _run(
    client: SimLabClient, algorithm: Algorithm, parameters: dict[str, Any], args: argparse.Namespace
) -> int:
    json_output(args.json)
    project = choose_project(client, args.project)
    simulation = client.create_simulation(project, algorithm.name, parameters, seed=args.seed)
    console.print(
        f"Simulation {simulation.id} ({algorithm.name}) {simulation.status.lower()} in project "
        f"{project.id}, seed {simulation.seed}."
    )
    if not args.wait:
        console.print(f"Follow it with `simlab show {simulation.id}`.")
        if args.json:
            emit_json({"simulation": simulation.model_dump(mode="json"), "files": []})
        return 0
    with _stopping_politely(simulation.id) as stopped:
        done = _wait_with_bar(client, simulation.id, args.timeout)
    if stopped:
        return 130
    paths: list[Path] = []
    if done.status != "SUCCEEDED":
        reason = done.error_message or "no reason given"
        err_console.print(f"[red]Simulation {done.id} {done.status}: {reason}[/red]")
    else:
        paths = _save_results(client, done.id, args.out or RESULTS_DIR / f"simulation-{done.id}")
        console.print(f"[green]Simulation {done.id} SUCCEEDED[/green]")
        _print_metrics(done.metrics)
        for path in paths:
            console.print(f"  saved {path}")
    if args.json:
        emit_json({"simulation": done.model_dump(mode="json"), "files": [str(p) for p in paths]})
    return 0 if done.status == "SUCCEEDED" else 1


def _save_results(client: SimLabClient, simulation_id: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        client.download_png(simulation_id, out / "picture.png"),
        client.download_npz(simulation_id, out / "result.npz"),
        client.download_metrics(simulation_id, out / "metrics.json"),
    ]


@contextmanager
def _stopping_politely(
    simulation_id: int | None, sweep_id: int | None = None
) -> Iterator[list[bool]]:
    """Ctrl-C stops waiting (the work goes on); the flag list tells the caller."""
    stopped: list[bool] = []
    try:
        yield stopped
    except KeyboardInterrupt:
        stopped.append(True)
        if simulation_id is not None:
            err_console.print(
                f"\nStopped waiting; simulation {simulation_id} goes on. "
                f"Cancel it with `simlab cancel {simulation_id}`, check it with "
                f"`simlab show {simulation_id}`."
            )
        else:
            err_console.print(
                f"\nStopped waiting; sweep {sweep_id} goes on. Its simulations are listed by "
                f"`simlab list --sweep {sweep_id}`; cancel them with `simlab cancel ID`."
            )


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _wait_with_bar(client: SimLabClient, simulation_id: int, timeout: float | None) -> Simulation:
    with _progress() as bar:
        task = bar.add_task(f"simulation {simulation_id}: QUEUED", total=1.0)

        def update(simulation: Simulation) -> None:
            eta = f", {simulation.eta_text}" if simulation.eta_text else ""
            bar.update(
                task,
                completed=simulation.progress,
                description=f"simulation {simulation_id}: {simulation.status_text}{eta}",
            )

        return client.wait(simulation_id, timeout, on_progress=update, max_interval=1.0)


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)
    }


def _print_metrics(metrics: dict[str, Any], limit: int = 12) -> None:
    scalars = _scalars(metrics)
    names = sorted(scalars, key=lambda k: (k != PREFERRED_METRIC, k))[:limit]
    for name in names:
        value = scalars[name]
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        console.print(f"  {name:<28} {shown}")


# --- sweep ----------------------------------------------------------------------------------
def _sweep(
    client: SimLabClient,
    algorithm: Algorithm,
    parameters: dict[str, Any],
    axes: list[dict[str, Any]],
    args: argparse.Namespace,
) -> int:
    json_output(args.json)
    project = choose_project(client, args.project)
    sweep = client.create_sweep(
        project,
        algorithm.name,
        axes,
        base_parameters=parameters,
        seeds_per_point=args.seeds_per_point,
        seed=args.seed,
        name=args.name,
    )
    varied = " x ".join(f"{a['parameter']} ({len(a['values'])})" for a in axes)
    console.print(
        f"Sweep {sweep.id} ({algorithm.name}): {sweep.total} simulations over {varied}, "
        f"project {project.id}."
    )
    if not args.wait:
        console.print(f"Results when done: GET /api/v1/sweeps/{sweep.id}/results/")
        if args.json:
            emit_json({"sweep": sweep.model_dump(mode="json"), "files": []})
        return 0
    with _stopping_politely(None, sweep.id) as stopped:
        done = _wait_sweep_with_bar(client, sweep, args.timeout)
    if stopped:
        return 130
    results = client.sweep_results(done.id)
    out = args.out or RESULTS_DIR / f"sweep-{done.id}"
    paths = save_sweep_results(results, out, metric=args.metric)
    _print_sweep_table(results, args.metric)
    for path in paths:
        console.print(f"  saved {path}")
    if args.json:
        emit_json({"sweep": done.model_dump(mode="json"), "files": [str(p) for p in paths]})
    if done.status != "SUCCEEDED":
        err_console.print(f"[red]Sweep {done.id} {done.status}: {done.counts}[/red]")
        return 1
    console.print(f"[green]Sweep {done.id} SUCCEEDED[/green] ({done.total} simulations)")
    return 0


def _wait_sweep_with_bar(client: SimLabClient, sweep: Sweep, timeout: float | None) -> Sweep:
    with _progress() as bar:
        task = bar.add_task(f"sweep {sweep.id}: {sweep.status}", total=sweep.total)

        def update(current: Sweep) -> None:
            bar.update(
                task,
                completed=current.completed,
                description=f"sweep {sweep.id}: {current.completed}/{current.total}",
            )

        return client.wait_sweep(sweep.id, timeout, on_progress=update, max_interval=1.0)


def save_sweep_results(
    results: SweepResults, out: Path, *, metric: str | None = None
) -> list[Path]:
    """results.json (the aggregate table as served), results.csv and plot.png."""
    out.mkdir(parents=True, exist_ok=True)
    as_json = out / "results.json"
    as_json.write_text(json.dumps(results.model_dump(mode="json"), indent=2) + "\n")
    header, rows = results.table()
    as_csv = out / "results.csv"
    with as_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    paths = [as_csv, as_json]
    plot = plot_sweep(results, out / "plot.png", metric=metric)
    if plot is not None:
        paths.append(plot)
    return paths


def plot_sweep(results: SweepResults, path: Path, *, metric: str | None = None) -> Path | None:
    """The sweep's plot (simlab.client.plots), or a note naming the metrics there are."""
    from simlab.client.plots import plot_sweep as save_plot

    saved = save_plot(results, path, metric=metric)
    if saved is None and metric is not None:
        known = ", ".join(results.metric_names) or "none"
        err_console.print(f"No metric {metric!r} to plot; there are: {known}.")
    return saved


def _print_sweep_table(results: SweepResults, metric: str | None, limit: int = 40) -> None:
    """Axes, completed runs and the plotted metric (every metric is in results.csv)."""
    from rich.table import Table

    chosen = plotted_metric(results, metric)
    table = Table(title=f"sweep {results.sweep} ({results.status})")
    for name in [*results.axis_names, "completed", *([chosen] if chosen else [])]:
        table.add_column(name, justify="right")
    for row in results.rows[:limit]:
        value = row.metrics.get(chosen) if chosen else None
        table.add_row(
            *(str(row.point.get(name)) for name in results.axis_names),
            f"{row.completed}/{len(row.simulations)}",
            *([f"{value:.4g}" if isinstance(value, float) else "-"] if chosen else []),
        )
    console.print(table)
    if len(results.rows) > limit:
        console.print(f"… {len(results.rows) - limit} more rows in results.csv")


# --- list, show, cancel ---------------------------------------------------------------------
@handles_errors
def list_command(args: argparse.Namespace) -> int:
    from itertools import islice

    from rich.table import Table

    json_output(args.json)
    limit = None if args.all else max(args.limit, 0)
    with make_client(args.url) as client:
        project = choose_project(client, args.project)
        found = client.simulations(
            project,
            status=args.status,
            algorithm=args.algorithm,
            sweep=args.sweep,
            page_size=1000 if limit is None else min(max(limit + 1, 1), 1000),
        )
        # One past the limit tells whether there are more to mention.
        simulations = list(found if limit is None else islice(found, limit + 1))
    more = limit is not None and len(simulations) > limit
    simulations = simulations[:limit] if limit is not None else simulations
    if args.json:
        emit_json(
            {
                "project": project.id,
                "simulations": [s.model_dump(mode="json") for s in simulations],
                "more": more,
            }
        )
        return 0
    table = Table(title=f"project {project.id} '{project.name}': simulations, newest first")
    for name, justify in (
        ("id", "right"),
        ("algorithm", "left"),
        ("status", "left"),
        ("progress", "right"),
        ("created", "left"),
        ("fractal dim.", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s in simulations:
        metric = s.metrics.get(PREFERRED_METRIC)
        table.add_row(
            str(s.id),
            s.algorithm,
            s.status_text,
            f"{s.progress:.0%}",
            s.created_at.astimezone().strftime("%m-%d %H:%M:%S") if s.created_at else "",
            f"{metric:.4g}" if isinstance(metric, int | float) else "",
        )
    console.print(table)
    if not simulations:
        console.print("No simulations (matching the filters).")
    if more:
        console.print(
            f"Showing the newest {len(simulations)}; there are more: "
            "--limit N shows N, --all shows every one."
        )
    return 0


@handles_errors
def show_command(args: argparse.Namespace) -> int:
    json_output(args.json)
    with make_client(args.url) as client:
        s = client.simulation(args.id)
        saved = _save_results(client, s.id, args.out) if args.out and s.succeeded else []
    if args.json:
        emit_json({"simulation": s.model_dump(mode="json"), "files": [str(p) for p in saved]})
        return 0
    console.print(f"[bold]Simulation {s.id}[/bold]  {s.algorithm}  [bold]{s.status_text}[/bold]")
    rows = [
        ("project", s.project),
        ("sweep", s.sweep),
        ("progress", f"{s.progress:.0%}"),
        ("eta", s.eta_text.removeprefix("ETA ") or "-"),
        ("flags", "; ".join(f"{f.kind}: {f.reason}" for f in s.flags) or "-"),
        ("seed", s.seed),
        ("attempts", s.attempts),
        ("tags", ", ".join(s.tags) or "-"),
        ("note", s.note or "-"),
        ("created by", s.created_by),
        ("created", s.created_at),
        ("started", s.started_at),
        ("finished", s.finished_at),
    ]
    for name, value in rows:
        if value is not None:
            console.print(f"  {name:<12} {value}")
    console.print("  parameters   " + json.dumps(s.parameters, sort_keys=True))
    if s.error_message:
        console.print(f"  [red]error        {s.error_message}[/red]")
    if s.metrics:
        console.print("metrics:")
        _print_metrics(s.metrics, limit=50)
    if s.succeeded and not saved:
        console.print(f"results: {s.links.png}, {s.links.npz}, {s.links.metrics} (--out DIR saves)")
    for path in saved:
        console.print(f"  saved {path}")
    return 0


@handles_errors
def cancel_command(args: argparse.Namespace) -> int:
    with make_client(args.url) as client:
        s = client.cancel(args.id)
    if s.status == "CANCELLED":
        console.print(f"Simulation {s.id} cancelled.")
    else:
        console.print(f"Simulation {s.id} is {s.status}: it stops at its next progress step.")
    return 0

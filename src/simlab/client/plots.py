"""Plots of sweep results, drawn with matplotlib's object API (no pyplot state): the CLI
saves them next to results.csv, the web UI serves them on a sweep's page.

One varied parameter: the metric's mean against it, with error bars of the spread over
seeds. Two: a heat map of the mean over the grid. More: one line per combination of the
others against the first, with error bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.client.models import SweepResults

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREFERRED_METRIC = "fractal_dimension"


def plotted_metric(results: SweepResults, metric: str | None = None) -> str | None:
    """`metric` if the results have it, else the preferred one, else the first; None if
    there is nothing to plot."""
    names = results.metric_names
    if metric is not None:
        return metric if metric in names else None
    if PREFERRED_METRIC in names:
        return PREFERRED_METRIC
    return names[0] if names else None


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _ordered(values: set[Any]) -> list[Any]:
    """Numbers in numeric order, anything else in text order."""
    listed = list(values)
    return sorted(listed) if _numeric(listed) else sorted(listed, key=str)


def sweep_figure(results: SweepResults, metric: str | None = None) -> Figure | None:
    """The figure of `metric` (see `plotted_metric`), or None when there is no data."""
    chosen = plotted_metric(results, metric)
    if chosen is None or not results.axis_names:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    names = results.axis_names
    rows = [row for row in results.rows if chosen in row.metrics]
    if len(names) == 2:
        xs = _ordered({row.point.get(names[0]) for row in rows})
        ys = _ordered({row.point.get(names[1]) for row in rows})
        grid = [[float("nan")] * len(xs) for _ in ys]
        for row in rows:
            x = xs.index(row.point.get(names[0]))
            y = ys.index(row.point.get(names[1]))
            grid[y][x] = row.metrics[chosen]
        image = axes.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        axes.set_xticks(range(len(xs)), [f"{v:g}" if _numeric([v]) else str(v) for v in xs])
        axes.set_yticks(range(len(ys)), [f"{v:g}" if _numeric([v]) else str(v) for v in ys])
        axes.set_xlabel(names[0])
        axes.set_ylabel(names[1])
        figure.colorbar(image, ax=axes, label=f"{chosen} (mean over seeds)")
        axes.set_title(f"{results.algorithm} sweep {results.sweep}: {chosen}")
        return figure
    x_name, *others = names
    lines: dict[tuple[Any, ...], list[tuple[Any, float, float]]] = {}
    for row in rows:
        key = tuple(row.point.get(name) for name in others)
        spread = row.spread.get(chosen, 0.0)
        lines.setdefault(key, []).append((row.point.get(x_name), row.metrics[chosen], spread))
    numeric = all(_numeric([x for x, _, _ in points]) for points in lines.values())
    for key, points in lines.items():
        if numeric:
            points.sort(key=lambda p: p[0])
        label = ", ".join(f"{n}={v}" for n, v in zip(others, key, strict=True))
        axes.errorbar(
            [p[0] if numeric else str(p[0]) for p in points],
            [p[1] for p in points],
            yerr=[p[2] for p in points],
            marker="o",
            capsize=3,
            label=label or None,
        )
    axes.set_xlabel(x_name)
    axes.set_ylabel(f"{chosen} (mean ± sd over seeds)")
    axes.set_title(f"{results.algorithm} sweep {results.sweep}: {chosen} vs {x_name}")
    axes.grid(alpha=0.3)
    if others:
        axes.legend(fontsize="small")
    return figure


def plot_sweep(results: SweepResults, path: Path, *, metric: str | None = None) -> Path | None:
    """Save the figure as a PNG at `path`; None (nothing written) without data."""
    figure = sweep_figure(results, metric)
    if figure is None:
        return None
    figure.savefig(path, dpi=120)
    return path

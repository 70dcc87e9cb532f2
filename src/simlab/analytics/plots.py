"""A surrogate model's prediction curve as a picture: its mean with the interval band
along one input (the others held), over the measured runs (each seed, and their mean)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib loads only where a picture is drawn, not with the services
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Curve:
    along: str
    target: str
    level: float
    xs: Sequence[float]
    mean: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]
    measured: Sequence[tuple[float, float]]  # (input value, metric) of each run shown
    held: str  # the other inputs' values, as "name=value, ..."


def measured_means(measured: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The mean of the runs at each input value, in order of the value."""
    grouped: dict[float, list[float]] = {}
    for x, y in measured:
        grouped.setdefault(x, []).append(y)
    return [(x, sum(ys) / len(ys)) for x, ys in sorted(grouped.items())]


def curve_figure(curve: Curve, title: str) -> Figure:
    """The band (nominal coverage), the mean, each run and the mean of the runs at each
    value."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    axes.fill_between(
        curve.xs,
        curve.low,
        curve.high,
        color="tab:blue",
        alpha=0.2,
        linewidth=0,
        label=f"{curve.level:.0%} interval",
    )
    axes.plot(curve.xs, curve.mean, color="tab:blue", label="predicted mean")
    if curve.measured:
        axes.scatter(
            [x for x, _ in curve.measured],
            [y for _, y in curve.measured],
            s=12,
            color="tab:gray",
            alpha=0.7,
            label=f"runs ({len(curve.measured)})",
        )
        means = measured_means(curve.measured)
        axes.scatter(
            [x for x, _ in means],
            [y for _, y in means],
            s=40,
            marker="D",
            color="tab:orange",
            label=f"mean of runs ({len(means)})",
        )
    axes.set_xlabel(curve.along)
    axes.set_ylabel(curve.target)
    axes.set_title(f"{title}\n{curve.held}" if curve.held else title, fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure

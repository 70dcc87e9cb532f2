"""A service's latency history as a picture, from its rollups (the status page and the
admin show the same one)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.dates import date2num
from matplotlib.figure import Figure

from simlab.registry.models import Rollup


def latency_figure(rollups: Sequence[Rollup], title: str) -> Figure | None:
    """Mean latency per bucket with its min-max band, and the buckets with failed checks
    marked; None when there is nothing to draw."""
    if not rollups:
        return None
    timed = [r for r in rollups if r.count and r.latency_min_ms is not None]
    figure = Figure(figsize=(7.2, 3.2), layout="constrained")
    axes = figure.add_subplot()
    if timed:
        buckets = date2num([r.bucket for r in timed])
        axes.fill_between(
            buckets,
            [r.latency_min_ms or 0.0 for r in timed],
            [r.latency_max_ms or 0.0 for r in timed],
            color="tab:blue",
            alpha=0.2,
            linewidth=0,
            label="min-max",
        )
        axes.plot(
            buckets,
            [r.latency_sum_ms / r.count for r in timed],
            color="tab:blue",
            label="mean",
        )
    failing = [r for r in rollups if r.ok_count < r.count]
    if failing:
        axes.scatter(
            date2num([r.bucket for r in failing]),
            [0.0] * len(failing),
            color="tab:red",
            marker="v",
            label="failed checks",
            zorder=3,
        )
    axes.xaxis_date()
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    return figure

"""The numerics behind ETAs and anomaly flags (no database)."""

from __future__ import annotations

import math
import random

from simlab.simulations.forecast import (
    FinishedRun,
    estimate_running,
    fit_runtime_model,
    metric_scales,
    naive_remaining,
    queue_etas,
    replica_scores,
    stall_score,
)


def _history(seed: int = 1) -> list[FinishedRun]:
    """Runs taking 1e-4 * n ** 1.5 s (10 % noise), whose progress reaches p at
    0.8 * p ** 1.1 of their duration (the last fifth spent after the last step)."""
    rng = random.Random(seed)
    runs = []
    for n in (1_000, 2_000, 4_000, 8_000, 16_000) * 4:
        duration = 1e-4 * n**1.5 * math.exp(rng.gauss(0, 0.1))
        marks = [[p, 0.8 * p**1.1 * duration] for p in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)]
        runs.append(FinishedRun({"n_particles": n, "lattice": "off"}, duration, marks))
    return runs


def test_the_runtime_model_learns_the_size_exponent_and_the_progress_shape() -> None:
    model = fit_runtime_model(_history())
    assert model.fitted
    assert model.runs == 20
    assert abs(model.slopes["n_particles"] - 1.5) < 0.1
    assert abs(model.shape_b - 1.1) < 0.05
    assert abs(math.exp(model.shape_log_a) - 0.8) < 0.05
    predicted = model.predict({"n_particles": 32_000})
    assert predicted is not None
    assert abs(predicted / (1e-4 * 32_000**1.5) - 1) < 0.25


def test_too_few_runs_make_no_model_and_the_eta_falls_back_on_the_progress() -> None:
    model = fit_runtime_model(_history()[:2])
    assert not model.fitted
    assert model.predict({"n_particles": 1000}) is None
    estimate = estimate_running(model, elapsed_s=10, progress=0.5, expected_s=None)
    assert estimate is not None
    assert abs(estimate.remaining_s - 10) < 1e-6
    assert estimate_running(model, elapsed_s=10, progress=0.0, expected_s=None) is None


def test_at_ten_percent_the_blend_beats_the_straight_line() -> None:
    model = fit_runtime_model(_history())
    duration = 1e-4 * 12_000**1.5
    elapsed = 0.8 * 0.1**1.1 * duration
    expected = model.predict({"n_particles": 12_000})
    estimate = estimate_running(model, elapsed_s=elapsed, progress=0.1, expected_s=expected)
    assert estimate is not None
    truth = duration - elapsed
    naive = naive_remaining(elapsed_s=elapsed, progress=0.1)
    assert naive is not None
    assert abs(estimate.remaining_s - truth) / truth < 0.1
    assert abs(naive - truth) / truth > 0.3


def test_queued_runs_wait_for_the_work_ahead_of_them() -> None:
    # Two workers busy for 10 s and 30 s more; queued runs of 20 s each.
    assert queue_etas(0.0, [10.0, 30.0], [20.0, 20.0, 20.0], 2) == [40.0, 50.0, 60.0]


def _sweep(rng: random.Random) -> list[list[dict[str, float]]]:
    return [
        [
            {"radius": 10 * (1 + point) * math.exp(rng.gauss(0, 0.05)), "n_particles": 500}
            for _ in range(10)
        ]
        for point in range(20)
    ]


def test_a_clean_sweep_scores_under_the_threshold_and_a_corrupted_metric_over_it() -> None:
    points = _sweep(random.Random(3))
    scales = metric_scales(points)
    assert scales["radius"].log
    assert scales["n_particles"].scale == 0

    def worst(point: list[dict[str, float]], index: int) -> float:
        others = [m for i, m in enumerate(point) if i != index]
        scores = replica_scores(point[index], others, scales=scales, min_replicas=5)
        return max((abs(s.z) for s in scores if s.beyond(0.0)), default=0.0)

    assert max(worst(point, i) for point in points for i in range(10)) < 8
    for corrupt in (
        {"radius": points[4][0]["radius"] * 3},
        {"radius": -1.0},
        {"radius": float("nan")},
        {"radius": None},
        {"n_particles": 501},
    ):
        points[4][0] = {**points[4][0], **corrupt}
        assert worst(points[4], 0) >= 8, corrupt
        points[4][0] = _sweep(random.Random(3))[4][0]


def test_a_metric_some_replicas_lack_is_not_held_against_a_run_lacking_it() -> None:
    point = [{"d": 1.0 + i / 100} for i in range(8)] + [{"d": None}, {"d": None}]
    scales = metric_scales([point])
    assert replica_scores(point[-1], point[:-1], scales=scales, min_replicas=5) == []


def test_a_stall_is_measured_against_the_runs_pace() -> None:
    assert stall_score(silent_s=130, expected_s=None, minimum_s=120, fraction=0.5) > 1
    assert stall_score(silent_s=130, expected_s=3600, minimum_s=120, fraction=0.5) < 1
    assert stall_score(silent_s=2000, expected_s=3600, minimum_s=120, fraction=0.5) > 1

"""Pins DLA clusters bit for bit: a refactor of the model must not change any coordinate.

The digests were generated from the single-module implementation before it was split into
a package and moved onto the shared driver; a physics change (e.g. the near-surface walk)
is the only reason to regenerate them, and says so in its commit.
"""

from __future__ import annotations

import hashlib

import pytest

from simlab.engine import driver, run

LARGE_2D_DIGEST = "3b7fb7745a83389466b5e58675e35b0b8e22db583f23d32aa4a6148adcbfb8c3"

PINNED_CLUSTERS: list[tuple[dict[str, object], str]] = [
    ({"n_particles": 400}, "688c7c88bf873a631ac65cc0c2675f2c414e8498b2626837091f6a47ffe94b0c"),
    (
        {"n_particles": 300, "dimension": 3},
        "6845c8dd0070ab3e1439afdba4ffbef34b694e78c4d40de0e3b684ea8777cd04",
    ),
    (
        {"n_particles": 400, "launch": "kill"},
        "e394bd0c9ff031bfea0386c5ca68cc181eb5ae47ea805ecfb8dc968186f7460a",
    ),
    (
        {"n_particles": 300, "dimension": 3, "launch": "kill", "kill_radius_factor": 2.0},
        "c7a1a1d04d4c3cb310e287a6636355bad949af7a6c03e07da324df229e11010c",
    ),
    (
        {"n_particles": 400, "lattice": "on"},
        "cda8230981548fd775b4c58e475ded39bc9ce7b4e9b5f9b7ed8be0506085c2e5",
    ),
    (
        {"n_particles": 300, "lattice": "on", "dimension": 3},
        "3fec8d38593354458cc634abd6b4150483dc95e6aca3ee333c98839fcb437900",
    ),
    (
        {"n_particles": 400, "sticking_probability": 0.5, "particle_radius": 0.5},
        "e5f73912c440f96ad9b0a2df4bc45d556775b0b10a3ec514ff98f687d5b42aa5",
    ),
    (
        {"n_particles": 300, "seed_geometry": "line", "substrate_width": 40.0},
        "ab68fde863a67afcd11f76d02379161c755afef7c84d515921b0ca8abf6759f9",
    ),
    (
        {
            "n_particles": 300,
            "seed_geometry": "line",
            "substrate_width": 20.0,
            "lattice": "on",
            "dimension": 3,
        },
        "12f75d232a70887b9fab5dcbcab1306c95aab11bb474ff352ec1a697ad320393",
    ),
    (
        {
            "n_particles": 200,
            "seed_geometry": "line",
            "substrate_width": 64.0,
            "dimension": 3,
            "launch": "kill",
        },
        "5eb67b197aa910967488e4dd5454e7a574cd20bcb7af28c7bda65cad27fa7710",
    ),
    # Large enough to widen the grid layout several times (grid_rebuilds > 0).
    ({"n_particles": 5000}, LARGE_2D_DIGEST),
    (
        {"n_particles": 2000, "dimension": 3, "lattice": "on"},
        "8ffeb47f763a8c9c64d05615c45fd63f6c65b8fcf03dfa724eeaab245f7b1cba",
    ),
]


@pytest.mark.parametrize(("params", "digest"), PINNED_CLUSTERS, ids=repr)
def test_cluster_is_bit_for_bit_the_pinned_one(params: dict[str, object], digest: str) -> None:
    result = run("dla", params, seed=7)
    coordinates = result.arrays["positions"].tobytes() + result.arrays["parents"].tobytes()
    assert hashlib.sha256(coordinates).hexdigest() == digest


def test_dla_runs_on_the_shared_driver_and_its_chunks_do_not_change_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Chunks of ~10 us (one or two particles) instead of ~20 ms: the driver, not a loop of
    # the model's own, decides where chunks end, and the cluster stays the pinned one.
    monkeypatch.setattr(driver, "TARGET_CHUNK_S", 1e-5)
    polls: list[None] = []
    result = run("dla", {"n_particles": 5000}, seed=7, should_stop=lambda: bool(polls.append(None)))
    coordinates = result.arrays["positions"].tobytes() + result.arrays["parents"].tobytes()
    assert hashlib.sha256(coordinates).hexdigest() == LARGE_2D_DIGEST
    assert len(polls) > 1000

import json

import numpy as np

from simlab.core.jsonsafe import json_safe


def test_numpy_values_and_non_finite_floats_become_strict_json() -> None:
    raw = {
        "d": np.float64(1.71),
        "n": np.int32(7),
        "curve": np.array([1.0, np.nan, np.inf]),
        "nested": [{"x": float("-inf")}, (np.bool_(True),)],
        3: "key",
    }
    safe = json_safe(raw)
    text = json.dumps(safe, allow_nan=False)
    assert json.loads(text) == {
        "d": 1.71,
        "n": 7,
        "curve": [1.0, None, None],
        "nested": [{"x": None}, [True]],
        "3": "key",
    }

"""The constant-velocity baseline, bit for bit."""

from __future__ import annotations

import numpy as np

from tests._support.windows import CFG, synthetic_windows
from trajops.models import create_model


def test_constant_velocity_is_last_position_plus_steps_of_the_last_velocity() -> None:
    obs = synthetic_windows(6, seed=9).obs.astype(np.float64)  # (N, T_obs, 2)
    steps = np.arange(1, CFG.t_pred + 1, dtype=np.float64)[None, :, None]
    expected = (obs[:, -1:] + (obs[:, -1:] - obs[:, -2:-1]) * steps).astype(np.float32)
    model = create_model("cv")
    np.testing.assert_array_equal(model.predict(obs), expected)  # bit for bit
    np.testing.assert_array_equal(model.predict(obs, num_samples=3, seed=0)[:, 0], expected)

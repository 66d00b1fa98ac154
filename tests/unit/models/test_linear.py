"""The ridge forecaster: validation picks alpha, a huge penalty falls back to constant velocity."""

from __future__ import annotations

import numpy as np
import pytest

from tests._support.windows import synthetic_windows
from trajops.models import ConstantVelocity
from trajops.models.linear import LinearConfig, LinearForecaster


def test_alpha_is_chosen_on_validation_from_the_grid() -> None:
    model = LinearForecaster(alpha_grid=(1e-2, 1.0, 1e6))
    history = model.fit(synthetic_windows(600, seed=1), synthetic_windows(200, seed=2))
    assert history["alpha"] in (1e-2, 1.0, 1e6)
    scores = history["val_ade"]
    assert scores[history["alpha"]] == min(scores.values())
    assert model.params()["selected_alpha"] == history["alpha"]


def test_without_validation_the_configured_alpha_is_used() -> None:
    model = LinearForecaster(LinearConfig(alpha=3.0))
    assert model.fit(synthetic_windows(200, seed=1))["alpha"] == 3.0


def test_a_huge_penalty_is_close_to_constant_velocity() -> None:
    train = synthetic_windows(500, seed=1)
    model = LinearForecaster(alpha=1e9)
    model.fit(train)
    test = synthetic_windows(50, seed=3)
    # Only the (unpenalised) intercept remains: the same agent-frame offset from CV for every
    # agent, so the offset's length per step does not depend on the agent.
    offset = np.linalg.norm(model.predict(test.obs) - ConstantVelocity().predict(test.obs), axis=-1)
    assert offset.max() < 0.2
    assert offset.std(axis=0).max() < 1e-3


def test_empty_training_set_is_refused() -> None:
    from trajops.errors import ValidationError

    with pytest.raises(ValidationError, match="no training windows"):
        LinearForecaster().fit(synthetic_windows(5).subset(np.zeros(5, bool)))

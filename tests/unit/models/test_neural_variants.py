"""The neural forecaster's design options: endpoint-conditioned decoding (``goal``), multi-head
attention over neighbours (``social_heads``) and mirror test-time augmentation
(``mirror_test``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._support.windows import CFG, synthetic_windows


def _reflect(x: np.ndarray) -> np.ndarray:
    """World coordinates reflected across the x axis (y -> -y)."""
    return x * np.array([1.0, -1.0], dtype=x.dtype)


def test_goal_decoding_learns_round_trips_and_keeps_its_architecture(tmp_path: Path) -> None:
    from trajops.errors import ValidationError
    from trajops.evaluation.metrics import ade
    from trajops.models.constant_velocity import ConstantVelocity
    from trajops.models.neural import NeuralForecaster

    train, val = synthetic_windows(600, seed=20), synthetic_windows(150, seed=21)
    test = synthetic_windows(150, seed=22)
    model = NeuralForecaster(epochs=8, hidden=32, modes=3, goal=True, device="cpu")
    model.fit(train, val)
    pred = model.predict(test.obs, neighbours=test.neighbours)
    cv = ConstantVelocity().predict(test.obs)
    assert ade(pred, test.fut) < ade(cv, test.fut)  # the walkers curve; CV cannot follow

    samples = model.predict(test.obs, neighbours=test.neighbours, num_samples=4, seed=0)
    assert samples.shape == (150, 4, CFG.t_pred, 2)
    np.testing.assert_array_equal(samples[:, 0], pred)
    ends = samples[:, 1:, -1]  # three decoded endpoints, apart from each other
    assert np.linalg.norm(ends[:, 0] - ends[:, 1], axis=-1).mean() > 0.01

    model.save(tmp_path / "m")
    loaded = NeuralForecaster.load(tmp_path / "m")
    assert loaded.config.goal
    np.testing.assert_array_equal(loaded.predict(test.obs, neighbours=test.neighbours), pred)
    with pytest.raises(ValidationError, match=r"cannot change goal \(True -> False\)"):
        NeuralForecaster.fine_tune(model, goal=False)


def test_multi_head_attention_reads_neighbours_in_any_order() -> None:
    from trajops.errors import ConfigError
    from trajops.models.neural import NeuralForecaster

    model = NeuralForecaster(epochs=2, hidden=16, modes=2, social_heads=4, device="cpu")
    model.fit(synthetic_windows(300, seed=23))
    test = synthetic_windows(20, seed=24)
    assert test.neighbours is not None
    pred = model.predict(test.obs, neighbours=test.neighbours[:, :8])
    shuffled = test.neighbours[:, [2, 0, 1, 3, 4, 5, 6, 7]]  # three seen neighbours, reordered
    np.testing.assert_allclose(model.predict(test.obs, neighbours=shuffled), pred, atol=1e-5)
    alone = model.predict(test.obs, neighbours=np.full_like(test.neighbours[:, :8], np.nan))
    assert np.abs(alone - pred).max() > 1e-4  # the neighbours are read
    with pytest.raises(ConfigError, match="social_heads must divide hidden"):
        NeuralForecaster(hidden=16, social_heads=3, device="cpu")


def test_mirror_test_makes_the_forecast_mirror_symmetric() -> None:
    """With ``mirror_test`` (the default) the forecast of a reflected scene is the reflected
    forecast; the network alone is not symmetric (only trained towards it)."""
    from trajops.models.neural import NeuralForecaster

    model = NeuralForecaster(epochs=3, hidden=16, modes=2, mirror_test=False, device="cpu")
    model.fit(synthetic_windows(300, seed=25))
    test = synthetic_windows(30, seed=26)
    assert test.neighbours is not None
    obs, nbr = test.obs.astype(np.float64), test.neighbours.astype(np.float64)

    def asymmetry(m: NeuralForecaster) -> float:
        pred = m.predict(obs, neighbours=nbr)
        mirrored = m.predict(_reflect(obs), neighbours=_reflect(nbr))
        return float(np.abs(_reflect(mirrored) - pred).max())

    assert asymmetry(model) > 1e-3
    symmetric = NeuralForecaster(model.config, mirror_test=True)
    symmetric.nets = model.nets
    assert asymmetry(symmetric) < 1e-4
    samples = symmetric.predict(obs, neighbours=nbr, num_samples=3, seed=0)
    np.testing.assert_array_equal(samples[:, 0], symmetric.predict(obs, neighbours=nbr))


def test_a_model_saved_before_the_options_loads_as_it_was_trained(tmp_path: Path) -> None:
    """A ``config.json`` written before ``goal``, ``social_heads`` and ``mirror_test`` existed
    loads with the values its weights were trained with, whatever today's defaults are."""
    import json

    from trajops.models._neural_config import SAVED_BEFORE
    from trajops.models.neural import NeuralForecaster

    model = NeuralForecaster(epochs=1, hidden=16, modes=2, device="cpu", **SAVED_BEFORE)
    model.fit(synthetic_windows(100, seed=27))
    model.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    for field in SAVED_BEFORE:
        del config[field]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = NeuralForecaster.load(tmp_path / "old")
    assert {k: getattr(loaded.config, k) for k in SAVED_BEFORE} == SAVED_BEFORE
    test = synthetic_windows(10, seed=28)
    np.testing.assert_array_equal(
        loaded.predict(test.obs, neighbours=test.neighbours),
        model.predict(test.obs, neighbours=test.neighbours),
    )

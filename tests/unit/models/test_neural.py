"""The neural forecaster: ensemble training history, devices, persistence, seeding, neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._support.windows import CFG, synthetic_windows


def test_neural_ensemble_history_device_and_round_trip(tmp_path: Path) -> None:
    from trajops.errors import ConfigError
    from trajops.models.neural import NeuralForecaster, resolve_device

    model = NeuralForecaster(epochs=3, hidden=16, modes=2, ensemble=2, mirror=True, device="cpu")
    history = model.fit(synthetic_windows(300, seed=7), synthetic_windows(100, seed=8))
    assert len(history["train_loss"]) == len(history["val_loss"]) == 3
    assert 0 <= history["best_epoch"] < 3
    assert history["val_loss"][history["best_epoch"]] == min(history["val_loss"])
    assert len(history["members"]) == 2 and history["ensemble_val_loss"] > 0
    windows = synthetic_windows(20, seed=9)
    samples = model.predict(windows.obs, neighbours=windows.neighbours, num_samples=5, seed=0)
    assert samples.shape == (20, 5, CFG.t_pred, 2)  # 4 hypotheses (2 members x 2 modes) + 1
    model.save(tmp_path / "m")
    loaded = NeuralForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(windows.obs), model.predict(windows.obs))
    assert resolve_device("cpu").type == "cpu"
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            NeuralForecaster(device="cuda")
    with pytest.raises(ConfigError, match="ensemble"):
        NeuralForecaster(ensemble=0)


def test_neural_training_is_seeded() -> None:
    from trajops.models.neural import NeuralForecaster

    train, test = synthetic_windows(200, seed=10), synthetic_windows(10, seed=11)
    preds = []
    for _ in range(2):
        model = NeuralForecaster(epochs=2, hidden=16, modes=2, device="cpu", seed=3)
        model.fit(train)
        preds.append(model.predict(test.obs, neighbours=test.neighbours))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_a_neural_model_without_neighbours_ignores_them() -> None:
    from trajops.models.neural import NeuralForecaster

    model = NeuralForecaster(epochs=2, hidden=16, modes=2, neighbours=0, device="cpu")
    model.fit(synthetic_windows(200, seed=12))
    test = synthetic_windows(10, seed=13)
    np.testing.assert_array_equal(
        model.predict(test.obs), model.predict(test.obs, neighbours=test.neighbours)
    )

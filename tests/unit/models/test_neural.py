"""The neural forecaster: ensemble training history, devices, persistence, seeding, neighbours,
fine-tuning."""

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
    deterministic = model.predict(windows.obs, neighbours=windows.neighbours)  # no modes head
    np.testing.assert_array_equal(deterministic, samples[:, 0])
    model.save(tmp_path / "m")
    loaded = NeuralForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(windows.obs), model.predict(windows.obs))
    assert resolve_device("cpu").type == "cpu"
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            NeuralForecaster(device="cuda")
    with pytest.raises(ConfigError, match="ensemble"):
        NeuralForecaster(ensemble=0)


@pytest.mark.parametrize("overrides", [{"seed": 3}, {"speed_jitter": 0.3}])
def test_neural_training_is_seeded(overrides: dict[str, float]) -> None:
    """Augmentations included: the same seed trains the same model."""
    from trajops.models.neural import NeuralForecaster

    train, test = synthetic_windows(200, seed=10), synthetic_windows(10, seed=11)
    preds = []
    for _ in range(2):
        model = NeuralForecaster(epochs=2, hidden=16, modes=2, device="cpu", **overrides)
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


def test_fine_tuning_starts_from_the_source_weights() -> None:
    import torch

    from trajops.errors import ValidationError
    from trajops.evaluation.metrics import ade
    from trajops.models.neural import NeuralForecaster

    train, val = synthetic_windows(200, seed=14), synthetic_windows(60, seed=15)
    test = synthetic_windows(10, seed=16)
    source = NeuralForecaster(epochs=2, hidden=16, modes=2, ensemble=2, device="cpu")
    source.fit(train, val)
    expected = source.predict(test.obs, neighbours=test.neighbours, num_samples=3)
    with pytest.raises(ValidationError, match="unfitted"):
        NeuralForecaster.fine_tune(NeuralForecaster(device="cpu"))
    with pytest.raises(ValidationError, match=r"cannot change hidden \(16 -> 32\)"):
        NeuralForecaster.fine_tune(source, hidden=32)

    # A zero learning rate leaves every weight where the source had it.
    frozen = NeuralForecaster.fine_tune(source, epochs=2, lr=0.0, seed=9)
    assert frozen.config.hidden == 16 and frozen.config.ensemble == 2 and frozen.config.seed == 9
    frozen.fit(train)
    np.testing.assert_array_equal(
        frozen.predict(test.obs, neighbours=test.neighbours, num_samples=3), expected
    )

    # Training moves the weights; the source's own weights compete on validation as epoch -1.
    tuned = NeuralForecaster.fine_tune(source, epochs=2, lr=1e-2)
    history = tuned.fit(train, val)
    assert tuned.nets is not None and source.nets is not None
    assert -1 <= history["best_epoch"] < 2
    val_ade = [ade(m.predict(val.obs, neighbours=val.neighbours), val.fut) for m in (source, tuned)]
    assert val_ade[1] <= val_ade[0] + 1e-4  # never worse on validation than where it started
    first = zip(  # the history is the first member's
        tuned.nets[0].state_dict().values(), source.nets[0].state_dict().values(), strict=True
    )
    moved = any(not torch.equal(a, b) for a, b in first)
    assert moved == (history["best_epoch"] >= 0)
    # The source is untouched by its fine-tuning.
    np.testing.assert_array_equal(
        source.predict(test.obs, neighbours=test.neighbours, num_samples=3), expected
    )


def test_speed_jitter_scales_whole_scenes() -> None:
    """The augmentation moves only the log speed feature (inputs are in speed units), within
    the jitter."""
    import torch

    from trajops.models._neural_net import augment
    from trajops.models.neural import NeuralConfig

    cfg = NeuralConfig(mirror=False, speed_jitter=0.3)
    ego, nbr, target = torch.rand(64, 31), torch.rand(64, 8, 38), torch.rand(64, 12, 2)
    a_ego, a_nbr, a_target = augment(cfg, ego, nbr, target, np.random.default_rng(0))
    assert torch.equal(a_ego[:, :-1], ego[:, :-1]) and torch.equal(a_nbr, nbr)
    assert torch.equal(a_target, target)
    shift = a_ego[:, -1] - ego[:, -1]
    assert shift.abs().max() <= 0.3 + 1e-6 and shift.std() > 0.05

"""Behavioural tests of every forecaster: physics sanity, equivariance, persistence, contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._support.windows import CFG, synthetic_windows
from trajops.errors import ValidationError
from trajops.models import Forecaster, create_model, load_model, save_model


@pytest.fixture(scope="module")
def fitted() -> dict[str, Forecaster]:
    train, val = synthetic_windows(1500, seed=1), synthetic_windows(300, seed=2)
    models: dict[str, Forecaster] = {
        "cv": create_model("cv"),
        "linear": create_model("linear"),
        "neural": create_model("neural", epochs=4, hidden=32, modes=4, device="cpu", num_threads=1),
    }
    for model in models.values():
        model.fit(train, val)
    return models


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, -s], [s, c]]).T


NAMES = ["cv", "linear", "neural"]


@pytest.mark.parametrize("name", NAMES)
def test_standing_agent_stays_put(fitted: dict[str, Forecaster], name: str) -> None:
    obs = np.tile(np.array([[3.0, -2.0]]), (1, CFG.t_obs, 1))  # (1, T_obs, 2)
    pred = fitted[name].predict(obs)
    assert pred.shape == (1, CFG.t_pred, 2)
    assert np.abs(pred - np.array([3.0, -2.0])).max() < 0.15


@pytest.mark.parametrize("name", NAMES)
def test_straight_walker_keeps_walking(fitted: dict[str, Forecaster], name: str) -> None:
    step = np.array([0.3, 0.2])
    obs = (np.array([1.0, 1.0]) + step * np.arange(CFG.t_obs)[:, None])[None]  # (1, T_obs, 2)
    expected = obs[0, -1] + step * np.arange(1, CFG.t_pred + 1)[:, None]  # (T_pred, 2)
    pred = fitted[name].predict(obs)[0]
    # Within 10 % of the distance walked, and heading the same way.
    assert np.linalg.norm(pred[-1] - expected[-1]) < 0.1 * np.linalg.norm(step) * CFG.t_pred
    assert np.dot(pred[-1] - obs[0, -1], step) > 0


@pytest.mark.parametrize("name", NAMES)
def test_predictions_rotate_and_translate_with_the_input(
    fitted: dict[str, Forecaster], name: str
) -> None:
    windows = synthetic_windows(50, seed=3)
    angle, shift = 1.1, np.array([25.0, -7.0])
    moved_obs = _rotate(windows.obs.astype(np.float64), angle) + shift
    moved_nbr = _rotate(windows.neighbours.astype(np.float64), angle) + shift
    base = fitted[name].predict(windows.obs, neighbours=windows.neighbours)
    moved = fitted[name].predict(moved_obs, neighbours=moved_nbr)
    np.testing.assert_allclose(moved, _rotate(base.astype(np.float64), angle) + shift, atol=2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_predicts_identically(
    fitted: dict[str, Forecaster], name: str, tmp_path: Path
) -> None:
    windows = synthetic_windows(40, seed=4)
    save_model(fitted[name], tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(fitted[name])
    assert loaded.params() == fitted[name].params()
    np.testing.assert_array_equal(
        loaded.predict(windows.obs, neighbours=windows.neighbours),
        fitted[name].predict(windows.obs, neighbours=windows.neighbours),
    )


@pytest.mark.parametrize("name", NAMES)
def test_samples_have_a_sample_axis_and_sample_zero_is_the_forecast(
    fitted: dict[str, Forecaster], name: str
) -> None:
    windows = synthetic_windows(10, seed=5)
    det = fitted[name].predict(windows.obs, neighbours=windows.neighbours)
    samples = fitted[name].predict(
        windows.obs, neighbours=windows.neighbours, num_samples=7, seed=1
    )
    assert samples.shape == (10, 7, CFG.t_pred, 2)
    np.testing.assert_allclose(samples[:, 0], det, atol=1e-5)
    assert np.ptp(samples[:, 1:], axis=1).max() > 1e-3  # the other samples differ
    again = fitted[name].predict(windows.obs, neighbours=windows.neighbours, num_samples=7, seed=1)
    np.testing.assert_array_equal(samples, again)


@pytest.mark.parametrize("name", ["linear", "neural"])
def test_learned_models_beat_nothing_on_curving_walkers(
    fitted: dict[str, Forecaster], name: str
) -> None:
    test = synthetic_windows(400, seed=6)
    pred = fitted[name].predict(test.obs, neighbours=test.neighbours)
    stay = np.repeat(test.obs[:, -1:], CFG.t_pred, axis=1)
    err = np.linalg.norm(pred - test.fut, axis=-1).mean()
    assert err < 0.5 * np.linalg.norm(stay - test.fut, axis=-1).mean()


@pytest.mark.parametrize("name", ["linear", "neural"])
def test_bad_observations_are_refused(fitted: dict[str, Forecaster], name: str) -> None:
    with pytest.raises(ValidationError, match="shape"):
        fitted[name].predict(np.zeros((2, 5, 2)))
    obs = np.zeros((1, CFG.t_obs, 2))
    obs[0, 3, 0] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        fitted[name].predict(obs)


@pytest.mark.parametrize("name", ["linear", "neural"])
def test_unfitted_models_refuse_to_predict(name: str) -> None:
    with pytest.raises(ValidationError, match="not fitted"):
        create_model(name).predict(np.zeros((1, CFG.t_obs, 2)))


def test_unknown_model_name_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="unknown model 'gru'"):
        create_model("gru")


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_gives_an_empty_forecast(fitted: dict[str, Forecaster], name: str) -> None:
    empty = np.zeros((0, CFG.t_obs, 2))
    assert fitted[name].predict(empty).shape == (0, CFG.t_pred, 2)
    assert fitted[name].predict(empty, num_samples=4).shape == (0, 4, CFG.t_pred, 2)

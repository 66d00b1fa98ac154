"""The pyfunc contract: frames in and out, scenes as neighbourhoods, logging and loading."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from trajops.errors import ValidationError
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import (
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    example_obs,
    frame_to_obs,
    log_forecaster,
    obs_to_frame,
    predict_frame,
    scene_neighbours,
)
from trajops.settings import Settings
from trajops.tracking.backend import connect, ensure_experiment


def test_frames_round_trip() -> None:
    obs = example_obs(3)  # (3, 8, 2)
    df = obs_to_frame(obs, agent_ids=["a", "b", "c"], scene_ids=["s", "s", "t"])
    assert list(df.columns) == INPUT_COLUMNS
    back, agents, scenes = frame_to_obs(df)
    np.testing.assert_allclose(back, obs)
    assert agents.tolist() == ["a", "b", "c"] and scenes.tolist() == ["s", "s", "t"]


def test_agents_are_neighbours_only_within_their_scene() -> None:
    obs = example_obs(3)
    nbrs = scene_neighbours(obs, np.array(["s", "s", "t"]))  # (3, K, 8, 2)
    np.testing.assert_allclose(nbrs[0, 0], obs[1])
    np.testing.assert_allclose(nbrs[1, 0], obs[0])
    assert np.isnan(nbrs[0, 1:]).all() and np.isnan(nbrs[2]).all()


def test_predict_frame_has_one_row_per_agent_and_sample() -> None:
    df = obs_to_frame(example_obs(2), agent_ids=["a", "b"], scene_ids=["s", "s"])
    out = predict_frame(ConstantVelocity(), df, {"num_samples": 3, "seed": 1})
    assert list(out.columns) == OUTPUT_COLUMNS
    assert out[["agent_id", "sample"]].values.tolist() == [
        ["a", 0],
        ["a", 1],
        ["a", 2],
        ["b", 0],
        ["b", 1],
        ["b", 2],
    ]
    # Sample 0 is the deterministic forecast: constant velocity continues the last step.
    step = df.loc[0, "x_7"] - df.loc[0, "x_6"]
    assert out.loc[0, "x_0"] == pytest.approx(df.loc[0, "x_7"] + step)
    again = predict_frame(ConstantVelocity(), df, {"num_samples": 3, "seed": 1})
    pd.testing.assert_frame_equal(out, again)  # seeded sampling is reproducible


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns=["y_3"]), "lacks column"),
        (lambda d: d.assign(x_2=[np.nan, 1.0]), "row 0, column x_2"),
        (lambda d: d.assign(y_0=["a", "b"]), "must be numbers"),
    ],
)
def test_bad_frames_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    df = obs_to_frame(example_obs(2), agent_ids=["a", "b"], scene_ids=["s", "s"])
    with pytest.raises(ValidationError, match=message):
        predict_frame(ConstantVelocity(), mutate(df))


def test_bad_params_are_refused() -> None:
    df = obs_to_frame(example_obs(1), agent_ids=["a"], scene_ids=["s"])
    with pytest.raises(ValidationError, match="num_samples must be between"):
        predict_frame(ConstantVelocity(), df, {"num_samples": 0})


def test_logged_pyfunc_loads_with_signature_and_fast_path(embedded_settings: Settings) -> None:
    client = connect(embedded_settings)
    with mlflow.start_run(experiment_id=ensure_experiment(embedded_settings, client)):
        info = log_forecaster(ConstantVelocity(), input_example_n=3)
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == INPUT_COLUMNS
    assert {p.name: p.default for p in info.signature.params.params} == {
        "num_samples": 1,
        "seed": 0,
    }
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert isinstance(loaded.unwrap_python_model().forecaster, ConstantVelocity)
    df = obs_to_frame(example_obs(2), agent_ids=["a", "b"], scene_ids=["s", "s"])
    out = loaded.predict(df, params={"num_samples": 2})
    assert len(out) == 4 and list(out.columns) == OUTPUT_COLUMNS

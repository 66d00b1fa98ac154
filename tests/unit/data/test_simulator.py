"""Crowd simulator: determinism, valid output, speed distribution, drift knobs, performance."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from trajops.data.readers import validate_tracks
from trajops.data.simulator import PRESETS, SimulationConfig, simulate
from trajops.data.windows import make_windows
from trajops.errors import ValidationError
from trajops.evaluation.metrics import ade
from trajops.models.constant_velocity import ConstantVelocity


def _step_speeds(tracks: pd.DataFrame, step_s: float) -> pd.Series:
    """Per-agent mean speed, from consecutive positions."""
    df = tracks.sort_values(["scene", "agent_id", "frame"])
    g = df.groupby(["scene", "agent_id"])
    step = np.hypot(g["x"].diff(), g["y"].diff()) / step_s
    return step.groupby([df["scene"], df["agent_id"]]).mean().dropna()


def test_same_seed_same_output_other_seed_other_output() -> None:
    cfg = SimulationConfig(n_agents=10, n_steps=40, n_scenes=2, seed=11)
    a, b = simulate(cfg), simulate(cfg)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(cfg.with_overrides(seed=12))
    assert not a[["x", "y"]].equals(c[["x", "y"]])


def test_output_is_valid_and_follows_the_frame_convention() -> None:
    cfg = SimulationConfig(n_agents=20, n_steps=150, n_scenes=2, seed=1)
    tracks = simulate(cfg)
    pd.testing.assert_frame_equal(validate_tracks(tracks), tracks)
    assert sorted(set(tracks["scene"])) == ["sim-000", "sim-001"]
    assert set(tracks["frame"] % 10) == {0}
    assert tracks["frame"].max() == (cfg.n_steps - 1) * 10
    # Tracks are contiguous: an agent that left never comes back.
    span = tracks.groupby(["scene", "agent_id"])["frame"].agg(["min", "max", "size"])
    assert ((span["max"] - span["min"]) // 10 + 1 == span["size"]).all()
    # Agents enter and leave: some tracks end early, some start late, enough are long.
    last = (cfg.n_steps - 1) * 10
    assert (span["max"] < last).sum() > 5 and (span["min"] > 0).sum() > 5
    assert (span["size"] >= 20).sum() > 20
    # About n_agents walk at any time.
    per_frame = tracks.groupby(["scene", "frame"]).size()
    assert per_frame.median() >= 0.8 * cfg.n_agents
    assert per_frame.max() <= cfg.n_agents


def test_speed_distribution_matches_config() -> None:
    # Low density, so interactions barely slow anyone down.
    cfg = SimulationConfig(
        n_agents=4, scene_size=40.0, n_steps=150, n_scenes=8, position_noise=0.0, seed=2
    )
    speeds = _step_speeds(simulate(cfg), cfg.step_s)
    assert speeds.mean() == pytest.approx(cfg.speed_mean, rel=0.12)
    assert speeds.std() == pytest.approx(cfg.speed_std, rel=0.4)

    fast = SimulationConfig.faster_population(n_agents=4, n_scenes=8, position_noise=0.0, seed=2)
    fast_speeds = _step_speeds(simulate(fast), fast.step_s)
    assert fast_speeds.mean() == pytest.approx(3.5, rel=0.12)

    doubled = _step_speeds(simulate(cfg.with_overrides(speed_factor=2.0)), cfg.step_s)
    assert doubled.mean() / speeds.mean() == pytest.approx(2.0, rel=0.1)


def test_time_step_shift_looks_faster_at_the_nominal_step() -> None:
    base = SimulationConfig(n_agents=4, scene_size=40.0, n_steps=100, n_scenes=4, seed=3)
    shifted = SimulationConfig.time_step_shift(
        n_agents=4, scene_size=40.0, n_steps=100, n_scenes=4, seed=3
    )
    # Frames step by 10 in both; read at the nominal 0.4 s, 0.5 s steps look 25 % faster.
    ratio = _step_speeds(simulate(shifted), 0.4).mean() / _step_speeds(simulate(base), 0.4).mean()
    assert ratio == pytest.approx(1.25, rel=0.08)


def test_walls_keep_agents_in_the_corridor() -> None:
    cfg = SimulationConfig(n_agents=20, n_steps=100, walls=True, position_noise=0.0, seed=4)
    tracks = simulate(cfg)
    assert tracks["y"].between(0.0, cfg.scene_size).all()


def test_windows_are_learnable() -> None:
    ws = make_windows(simulate(SimulationConfig(n_steps=120, seed=6)))
    assert len(ws) > 500
    # Mostly smooth walking: constant velocity is a fair baseline, far from perfect or useless.
    error = ade(ConstantVelocity().predict(ws.obs), ws.fut)
    assert 0.2 < error < 1.0


def test_presets_and_config_validation() -> None:
    assert set(PRESETS) >= {"pedestrians", "faster_population", "time_step_shift"}
    assert SimulationConfig.preset("time_step_shift").step_s == 0.5
    assert SimulationConfig.preset("pedestrians", n_agents=3).n_agents == 3
    assert SimulationConfig.faster_population().speed_mean > 3.0
    with pytest.raises(ValidationError, match="unknown simulation preset"):
        SimulationConfig.preset("cars")
    with pytest.raises(ValidationError, match="n_agents must be at least 1") as info:
        SimulationConfig(n_agents=0, step_s=-1.0)
    assert {d["loc"][1] for d in info.value.details} == {"n_agents", "step_s"}
    with pytest.raises(ValidationError, match="speed_factor must be a finite number"):
        SimulationConfig(speed_factor=float("inf"))


def test_ten_thousand_agent_steps_in_well_under_a_second() -> None:
    cfg = SimulationConfig(n_agents=50, n_steps=200, seed=0)
    simulate(cfg.with_overrides(n_steps=5))  # warm-up
    start = time.perf_counter()
    tracks = simulate(cfg)
    elapsed = time.perf_counter() - start
    assert len(tracks) >= 9_000  # ~10,000 agent-steps (slots may briefly stay empty)
    assert elapsed < 1.0, f"10k agent-steps took {elapsed:.2f} s"

"""Grouped breakdowns: horizon, speed and density bins as tidy rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trajops.data.windows import WindowConfig, WindowSet
from trajops.errors import ValidationError
from trajops.evaluation.groups import GroupConfig, crowd_density, grouped_rows, observed_speed

CFG = WindowConfig()


def _windows() -> WindowSet:
    # Agent 0 stands (0 m/s), agent 1 walks 0.4 m per 0.4 s step (1 m/s).
    traj = np.zeros((2, CFG.length, 2), np.float32)
    traj[1, :, 0] = 0.4 * np.arange(CFG.length)
    nbrs = np.full((2, CFG.max_neighbours, CFG.t_obs, 2), np.nan, np.float32)
    nbrs[0, :4] = traj[0, : CFG.t_obs] + np.array([1.0, 0.0], np.float32)  # 4 within 2 m
    nbrs[1, 0] = traj[1, : CFG.t_obs] + np.array([5.0, 0.0], np.float32)  # one, far away
    return WindowSet(
        traj=traj,
        neighbours=nbrs,
        scene=np.array(["s", "s"], dtype=object),
        agent_id=np.array(["0", "1"], dtype=object),
        start_frame=np.zeros(2, np.int64),
        config=CFG,
    )


def test_speed_and_density_come_from_the_observed_part() -> None:
    w = _windows()
    np.testing.assert_allclose(observed_speed(w.obs), [0.0, 1.0], atol=1e-6)
    assert crowd_density(w.obs, w.neighbours, 2.0).tolist() == [4, 0]


def test_rows_per_group_hold_the_right_agents() -> None:
    w = _windows()
    pred = w.fut.copy()
    pred[1] += np.array([0.0, 1.0], np.float32)  # only the walker is wrong, by 1 m
    rows = grouped_rows(pred, w, model="m", config=GroupConfig(speed_edges=(0.0, 0.5, math.inf)))
    horizon = [r for r in rows if r["group"] == "horizon"]
    assert [r["bin"] for r in horizon] == list(range(1, CFG.t_pred + 1))
    assert horizon[-1]["t_s"] == pytest.approx(4.8)
    assert all(r["ade"] == pytest.approx(0.5) for r in horizon)
    speed = {r["bin"]: r for r in rows if r["group"] == "speed"}
    assert speed["[0, 0.5) m/s"]["n"] == 1 and speed["[0, 0.5) m/s"]["ade"] == 0.0
    assert speed["[0.5, inf) m/s"]["fde"] == pytest.approx(1.0)
    density = {r["bin"]: r for r in rows if r["group"] == "density"}
    assert density["[0, 1) neighbours"]["ade"] == pytest.approx(1.0)
    assert density["[3, 6) neighbours"]["n"] == 1
    assert density["[6, inf) neighbours"]["n"] == 0 and math.isnan(
        density["[6, inf) neighbours"]["ade"]
    )
    assert {r["model"] for r in rows} == {"m"}


def test_bins_must_increase() -> None:
    with pytest.raises(ValidationError, match="speed_edges"):
        GroupConfig(speed_edges=(1.0, 0.5))

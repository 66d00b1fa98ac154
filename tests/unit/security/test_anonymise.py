"""Data minimisation helpers: coordinate rounding and timestamp bucketing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from trajops.monitoring.service import Monitor
from trajops.security.anonymise import bucket_time, stored_array, stored_coordinates
from trajops.settings import Settings
from trajops.store import PredictionRecord


def test_stored_coordinates_are_rounded_lists_per_agent() -> None:
    obs = np.array([[[1.23456, -7.891], [0.04, 0.06]], [[5.0, 5.54], [-0.0, 1e-9]]])  # (2, 2, 2)
    assert stored_coordinates(obs, 1) == [
        [[1.2, -7.9], [0.0, 0.1]],
        [[5.0, 5.5], [-0.0, 0.0]],
    ]
    assert stored_coordinates(obs[:1], 4) == [[[1.2346, -7.891], [0.04, 0.06]]]
    with pytest.raises(ValueError):
        stored_coordinates(obs, 9)
    # already rounded to no more places than kept: stored as they are; else rounded
    unrounded = obs[:1] + 1e-6  # stands in for values the caller says are rounded
    assert stored_coordinates(unrounded, 4, rounded_to=3) == unrounded.tolist()
    assert stored_coordinates(obs[:1], 1, rounded_to=3) == [[[1.2, -7.9], [0.0, 0.1]]]
    samples = np.zeros((2, 3, 4, 2))  # (N, K, T, 2): sample 0 is a strided view
    picked = stored_array(samples[:, 0], 4, rounded_to=4)  # not rounded again, still copied
    assert picked.flags.c_contiguous and picked.shape == (2, 4, 2)  # orjson takes it as is


def test_bucket_time_floors_to_the_bucket() -> None:
    moment = datetime(2026, 3, 1, 12, 44, 59, 999, tzinfo=UTC)
    assert bucket_time(moment, 900) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert bucket_time(moment, 0) is moment
    assert bucket_time(moment.replace(tzinfo=None), 3600) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(ValueError):
        bucket_time(moment, -1)


def test_monitor_stores_rounded_bucketed_pseudonymous_rows(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, store_coordinate_decimals=1, store_time_bucket_s=900)
    monitor = Monitor(settings).start()
    obs = np.full((2, 8, 2), 1.23456)  # (N, T_obs, 2)
    pred = np.full((2, 12, 2), 4.56789)  # (N, T_pred, 2)
    monitor.log_prediction(
        request_id="r1", model_name="m", model_version="1", variant="default",
        agent_ids=["ped-alice", "ped-bob"], scene_id="zara01", obs=obs, pred=pred,
        step_s=0.4, latency_ms=2.0,
    )  # fmt: skip
    monitor.close()
    with monitor.store.session() as s:
        rows = s.scalars(select(PredictionRecord)).all()
    assert len(rows) == 2
    assert rows[0].inputs[0] == [1.2, 1.2] and rows[0].outputs[-1] == [4.6, 4.6]
    stamp = rows[0].created_at
    assert stamp.minute % 15 == 0 and stamp.second == 0 and stamp.microsecond == 0
    stored = " ".join(f"{r.agent_key} {r.scene_key}" for r in rows)
    assert "ped-alice" not in stored and "zara01" not in stored

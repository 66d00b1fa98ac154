"""Realised production forecasts in an operational store, as ``/v1/tracks`` leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import WindowConfig, make_windows
from trajops.store.db import Store
from trajops.store.models import Feedback, PredictionRecord


def seed_production(
    url: str, *, n_windows: int, minutes: float = 120.0, agents_per_request: int = 8
) -> int:
    """A prediction row per agent (``agents_per_request`` a request, constant-velocity
    forecasts of champion v1) and a feedback row with its whole 4.8 s future, spread evenly
    over the last ``minutes``, over three simulated sites. Returns the windows written."""
    crowd = simulate(SimulationConfig.pedestrians(n_agents=24, n_steps=200, n_scenes=3, seed=9))
    every = make_windows(crowd, WindowConfig(stride=2))
    windows = every.subset(np.random.default_rng(0).permutation(len(every))[:n_windows])
    obs, fut = windows.obs, windows.fut  # (n, T_obs, 2), (n, T_pred, 2): the sites mixed
    n = len(obs)
    n_requests = max(1, n // agents_per_request)
    start = datetime.now(UTC) - timedelta(minutes=minutes)
    rows: list[PredictionRecord | Feedback] = []
    for i in range(n):
        request = i // agents_per_request
        at = start + timedelta(minutes=minutes * request / n_requests)
        forecast = obs[i, -1] + (obs[i, -1] - obs[i, -2]) * np.arange(1, 13)[:, None]
        err = np.linalg.norm(forecast - fut[i], axis=-1)  # (T_pred,)
        key = {"request_id": f"prod-{request}", "agent_key": f"agent-{windows.agent_id[i]}-{i}"}
        rows.append(
            PredictionRecord(
                **key,
                created_at=at,
                model_name="trajectory-forecaster",
                model_version="1",
                scene_key=f"site-{windows.scene[i]}",
                inputs=obs[i].tolist(),
                outputs=forecast.tolist(),
                step_s=0.4,
                latency_ms=2.0,
            )
        )
        rows.append(
            Feedback(
                **key,
                created_at=at,
                model_version="1",
                positions=fut[i].tolist(),
                n_steps=12,
                ade=float(err.mean()),
                fde=float(err[-1]),
            )
        )
    store = Store(url)
    try:
        with store.session() as session:
            session.add_all(rows)
    finally:
        store.dispose()
    return n

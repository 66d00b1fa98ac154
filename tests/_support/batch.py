"""Helpers of the batch tests: a real SQLite MLflow registry with a CV champion, tracks files."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from trajops.models import ConstantVelocity
from trajops.models.pyfunc import log_forecaster

MODEL = "trajectory-forecaster"


def cv_registry(root: Path, *, model_name: str = MODEL) -> str:
    """A SQLite MLflow store under ``root`` whose ``champion`` is a CV model (v1); its URI."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("batch-tests", artifact_location=(root / "art").as_uri())
    # Registration goes to the process-wide registry URI, which an earlier `connect()` may
    # have pointed at another store: set both, restore both.
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        with mlflow.start_run(experiment_id=exp):
            log_forecaster(ConstantVelocity(), registered_model_name=model_name)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    client.set_registered_model_alias(model_name, "champion", "1")
    return uri


def walkers(*, scenes: int, agents: int, steps: int, seed: int = 0) -> pd.DataFrame:
    """Straight walkers: ``scenes x agents`` agents seen on ``steps`` frames (a tracks frame).

    Each agent yields ``steps - 7`` observation windows; positions are exact multiples so a
    constant-velocity forecast is known in closed form (x grows by ``vx`` per step).
    """
    rng = np.random.default_rng(seed)
    n = scenes * agents
    vx = np.round(rng.uniform(-1.0, 1.0, n), 3)  # (n,) metres per step
    vy = np.round(rng.uniform(-1.0, 1.0, n), 3)
    x0 = np.round(rng.uniform(0, 50, n), 3)
    y0 = np.round(rng.uniform(0, 50, n), 3)
    t = np.arange(steps)  # (T,)
    return pd.DataFrame(
        {
            "scene": np.repeat([f"s{i:04d}" for i in range(scenes)], agents * steps),
            "frame": np.tile(t * 10, n),
            "agent_id": np.repeat([str(i % agents) for i in range(n)], steps),
            "x": (x0[:, None] + vx[:, None] * t[None, :]).ravel(),
            "y": (y0[:, None] + vy[:, None] * t[None, :]).ravel(),
        }
    )

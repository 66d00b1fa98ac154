"""Broken models and store checks for the reliability tests.

* :class:`FlakyForecaster` raises on chosen inputs (agents whose last x is beyond
  ``fail_above_x``): ``-inf`` raises on everything (the smoke test must reject it), a large
  value raises on some requests only (a challenger the experiment's error-rate guardrail must
  catch). It is a forecaster type of the test process (``register_model_type``), logged and
  registered like any model and loaded by the pool through the same registry URI path.
* :func:`corrupt_version` overwrites a registered version's forecaster config on disk.
* :func:`stored_counts` counts prediction and audit rows of given requests in the store.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from sqlalchemy import func, select

from trajops.models import ConstantVelocity, register_model_type, save_model
from trajops.models.pyfunc import ARTIFACT_KEY, TrajopsPythonModel, pip_requirements, signature
from trajops.store import Store
from trajops.store.models import AuditEntry, PredictionRecord


class FlakyForecaster:
    """Wraps constant velocity; raises ``RuntimeError`` when an agent's last x exceeds a bound."""

    name = "flaky"
    scene_aware = False

    def __init__(self, fail_above_x: float) -> None:
        self.fail_above_x = fail_above_x
        self.inner = ConstantVelocity()

    def predict(self, obs: np.ndarray, **kwargs: Any) -> np.ndarray:
        if float(np.max(obs[:, -1, 0], initial=-np.inf)) > self.fail_above_x:
            raise RuntimeError(f"flaky forecaster: x beyond {self.fail_above_x}")
        return self.inner.predict(obs, **kwargs)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"fail_above_x": repr(self.fail_above_x)}))

    @classmethod
    def load(cls, path: Path) -> FlakyForecaster:
        return cls(float(json.loads((path / "config.json").read_text())["fail_above_x"]))


register_model_type(FlakyForecaster.name, FlakyForecaster)


def register_flaky(
    uri: str, *, model_name: str, fail_above_x: float, experiment_name: str | None = None
) -> str:
    """Register a :class:`FlakyForecaster` in the registry at ``uri`` (its run in
    ``experiment_name``, whose artifact location decides where the files go); returns the new
    version."""
    from tests._support.mlflow_uris import mlflow_uris

    model = FlakyForecaster(fail_above_x)
    with tempfile.TemporaryDirectory(prefix="trajops-flaky-") as tmp, mlflow_uris(uri):
        folder = Path(tmp) / ARTIFACT_KEY
        save_model(model, folder)  # type: ignore[arg-type]
        exp = MlflowClient(uri, registry_uri=uri).get_experiment_by_name(
            experiment_name or "Default"
        )
        with mlflow.start_run(experiment_id=exp.experiment_id if exp else None):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=TrajopsPythonModel(),
                artifacts={ARTIFACT_KEY: str(folder)},
                signature=signature(),
                pip_requirements=pip_requirements(ConstantVelocity()),
                registered_model_name=model_name,
            )
    return str(info.registered_model_version)


def corrupt_version(client: MlflowClient, *, model_name: str, version: str) -> Path:
    """Overwrite the forecaster config of a version stored in a local artifact folder;
    returns the file that was corrupted."""
    uri = client.get_model_version_download_uri(model_name, version)
    root = Path(uri.removeprefix("file://"))
    configs = list(root.rglob("forecaster/model/config.json"))
    if not configs:
        raise FileNotFoundError(f"no forecaster config under {root}")
    configs[0].write_bytes(b"{ this is not JSON")
    return configs[0]


def stored_counts(database_url: str, request_ids: list[str]) -> tuple[int, int]:
    """``(prediction rows, audit rows)`` of ``request_ids`` in the operational store."""
    store = Store(database_url, run_migrations=False)
    try:
        with store.session() as s:
            preds = s.scalar(
                select(func.count()).where(PredictionRecord.request_id.in_(request_ids))
            )
            audit = s.scalar(select(func.count()).where(AuditEntry.request_id.in_(request_ids)))
    finally:
        store.dispose()
    return int(preds or 0), int(audit or 0)

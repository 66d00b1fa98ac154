"""A real SQLite MLflow registry holding constant-velocity versions, for tests that serve models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from tests._support.mlflow_uris import mlflow_uris
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import log_forecaster

MODEL = "trajectory-forecaster"


@dataclass(frozen=True)
class RegistryInfo:
    uri: str
    root: Path
    client: MlflowClient


def build_registry(root: Path, *, versions: int = 1) -> RegistryInfo:
    """A SQLite MLflow store under ``root`` with ``versions`` CV versions; champion = 1,
    challenger = 2 (when there are two)."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("serving-tests", artifact_location=(root / "art").as_uri())
    with mlflow_uris(uri):
        for _ in range(versions):
            with mlflow.start_run(experiment_id=exp):
                log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    if versions > 1:
        client.set_registered_model_alias(MODEL, "challenger", "2")
    return RegistryInfo(uri=uri, root=root, client=client)

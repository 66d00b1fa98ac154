"""A real SQLite MLflow registry of four versions, registered once per module.

Constant velocity (v1), a fitted ridge model (v2), the same ridge model with its intercept
damaged by 0.5 m (v3) and a version whose forecaster artifact was deleted (v4). Tests work on
their own copy of the database (the artifacts stay in the template). ``cli`` runs the
``trajops`` entry point in-process (:mod:`tests._support.cli`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from tests._support.cli import cli
from trajops.data.windows import make_windows
from trajops.models import ConstantVelocity, create_model
from trajops.models.base import Forecaster
from trajops.models.pyfunc import log_forecaster
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.tracking.backend import connect, ensure_experiment
from trajops.tracking.datasets import DataSplits

__all__ = ["cli", "gate_home", "template"]


def _register(settings: Settings, model: Forecaster) -> tuple[int, str]:
    client = connect(settings)
    exp = ensure_experiment(settings, client)
    with mlflow.start_run(experiment_id=exp) as run:
        info = log_forecaster(model)
    registry = Registry(client, settings.model_name)
    version = registry.create_version(model_id=info.model_id, run_id=run.info.run_id, tags={})
    return version.version, info.model_id


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, small_splits: DataSplits) -> Path:
    """The home folder of the four-version registry (see the module docstring)."""
    home = tmp_path_factory.mktemp("gate") / "home"
    settings = Settings(home=home)
    linear = create_model("linear")
    linear.fit(make_windows(small_splits.train), make_windows(small_splits.val))
    _register(settings, ConstantVelocity())
    _register(settings, linear)
    linear.weights[-1] += 0.5  # type: ignore[attr-defined]  # a plausible but wrong model
    _register(settings, linear)
    _, broken_id = _register(settings, ConstantVelocity())
    for path in settings.artifact_root.rglob("forecaster.json"):
        if broken_id in str(path):
            path.unlink()
    return home


@pytest.fixture
def gate_home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own on a copy of the template registry; ``TRAJOPS_HOME`` points at it."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(template / "mlflow.db", home / "mlflow.db")  # artifacts stay in the template
    monkeypatch.setenv("TRAJOPS_HOME", str(home))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "TRAJOPS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return home

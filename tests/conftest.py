"""Shared fixtures. Keep each fixture small, documented, and free of mocks of things that run here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from trajops.settings import Settings

if TYPE_CHECKING:
    from trajops.tracking.datasets import DataSplits


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris() -> Iterator[None]:
    """Every test starts and ends with MLflow's process-wide URIs as they were.

    ``mlflow.set_registry_uri`` also exports ``MLFLOW_REGISTRY_URI``; left behind, it sends a
    later test's registrations (and its subprocesses) to an earlier test's registry.
    """
    from tests._support.mlflow_uris import restored_mlflow_uris

    with restored_mlflow_uris():
        yield


@pytest.fixture
def embedded_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on the embedded defaults inside ``tmp_path`` (SQLite MLflow store + artifacts).

    The environment is isolated too (``TRAJOPS_HOME`` set, tracking URIs unset), so code that
    builds its own ``Settings()`` sees the same store. Any MLflow run left active is ended.
    """
    home = tmp_path / "home"
    monkeypatch.setenv("TRAJOPS_HOME", str(home))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    yield Settings(home=home)
    import mlflow  # imported here: suites that never touch MLflow do not pay for it

    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="session")
def small_splits() -> DataSplits:
    """A few simulated scenes split by scene: enough windows to train and score in seconds."""
    from trajops.data.simulator import SimulationConfig
    from trajops.tracking.datasets import simulated_splits

    return simulated_splits(SimulationConfig(n_scenes=3, n_agents=10, n_steps=80, seed=3))

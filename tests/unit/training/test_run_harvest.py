"""A training on a production harvest (with base data) against a real SQLite MLflow store:
the harvest's lineage on the run and on the registered version."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from tests._support.harvest import make_harvest
from trajops.data.simulator import SimulationConfig
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.tracking.datasets import path_splits, simulated_splits
from trajops.training.run import TrainSpec, train_run


def test_a_harvest_training_logs_its_lineage_on_the_run_and_the_version(
    embedded_settings: Settings, tmp_path: Path
) -> None:
    config = SimulationConfig(n_scenes=2, n_agents=10, n_steps=400, seed=1)
    harvest = make_harvest(tmp_path / "harvest", config)
    base = simulated_splits(SimulationConfig(n_scenes=3, n_agents=6, n_steps=40, seed=5))
    splits = path_splits(harvest, base=base)
    result = train_run(embedded_settings, TrainSpec(model="linear", register=True), splits)
    run = MlflowClient().get_run(result.run_id)
    for key, value in splits.lineage.items():
        assert run.data.params[key] == value and run.data.tags[key] == value, key
    assert run.data.tags["harvest.split"] == "time"
    assert run.data.tags["base_data"] == base.source
    assert run.data.tags["data.name"] == splits.name and splits.name.startswith("harvest-")
    version = Registry.from_settings(embedded_settings).get_version(result.version or 0)
    assert version.tags["harvest.fingerprint"] == splits.lineage["harvest.fingerprint"]
    assert version.tags["base_data.fingerprint"] == splits.lineage["base_data.fingerprint"]

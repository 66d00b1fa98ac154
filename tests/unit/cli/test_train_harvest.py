"""``trajops train --data HARVEST [--base-data PATH] [--init-from REF] --register`` on a real
embedded store: train on production, fine-tune the result, and the user errors on the way."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests._support.cli import CliRunner
from tests._support.harvest import make_harvest
from trajops.data.simulator import SimulationConfig, simulate
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.training.finetune import FINE_TUNE_EPOCHS, FINE_TUNE_LR_FACTOR


@pytest.fixture(scope="module")
def harvest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SimulationConfig(n_scenes=2, n_agents=10, n_steps=400, seed=1)
    return make_harvest(tmp_path_factory.mktemp("h") / "harvest", config)


def test_train_on_a_harvest_with_base_data_then_fine_tune_it(
    cli: CliRunner, home: Path, harvest: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base.csv"
    simulate(SimulationConfig(n_scenes=3, n_agents=6, n_steps=40, seed=5)).to_csv(base, index=False)
    args = ("--data", str(harvest), "--base-data", str(base), "--register")
    first = cli("train", "--model", "neural", "--epochs", "1", *args, "--json")
    assert first.code == 0, first.stderr[-3000:]
    [run] = first.json()["runs"]
    assert run["version"] == 1
    params = MlflowClient().get_run(run["run_id"]).data.params
    assert params["data.name"].startswith("harvest-") and params["harvest.split"] == "time"
    assert params["base_data"] == str(base.resolve())

    tuned = cli("train", "--model", "neural", "--epochs", "1", *args, "--init-from", "v1")
    assert tuned.code == 0, tuned.stderr[-3000:]
    assert tuned.stdout.strip().splitlines()[-1].startswith("registered trajectory-forecaster v2")
    version = Registry.from_settings(Settings(home=home)).get_version(2)
    assert version.tags["init_from"] == "1"
    assert version.tags["harvest.fingerprint"] == params["harvest.fingerprint"]
    assert MlflowClient().get_run(version.run_id or "").data.params["init_from"] == "1"


def test_the_user_errors_of_training_on_production(
    cli: CliRunner, home: Path, harvest: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "tracks.csv"
    simulate(SimulationConfig(n_scenes=3, n_agents=6, n_steps=40, seed=5)).to_csv(csv, index=False)
    not_a_harvest = cli("train", "--data", str(csv), "--base-data", str(harvest))
    assert not_a_harvest.code == 2 and "use it with --data HARVEST" in not_a_harvest.stderr
    simulated = cli("train", "--simulate", "--base-data", str(csv))
    assert simulated.code == 2 and "--base-data adds training data" in simulated.stderr
    linear = cli("train", "--data", str(harvest), "--init-from", "champion")
    assert linear.code == 2 and "fine-tunes the neural model" in linear.stderr
    missing = cli("train", "--model", "neural", "--data", str(harvest), "--init-from", "champion")
    assert missing.code == 2 and "no registered model" in missing.stderr
    tiny = make_harvest(
        tmp_path / "tiny", SimulationConfig(n_scenes=1, n_agents=6, n_steps=60, seed=2)
    )
    small = cli("train", "--data", str(tiny), "--json")
    assert small.code == 2
    error = small.json()["error"]
    assert error["code"] == "data_error" and "too small to train on" in error["message"]
    assert "need at least 50 windows each" in error["message"]
    # The help states the fine-tuning defaults the code uses.
    text = " ".join(cli("train", "--help").stdout.split())
    assert f"{FINE_TUNE_EPOCHS} epochs at {FINE_TUNE_LR_FACTOR} x" in text

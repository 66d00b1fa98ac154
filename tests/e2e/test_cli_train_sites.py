"""``trajops train --ensemble N`` (one registered, served version of N members) and
``--all-scenes`` (every site of an ETH/UCY root in one model, each recording cut in time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._support.cli import CliRunner, cli
from trajops.models.pyfunc import load_forecaster
from trajops.settings import Settings

__all__ = ["cli"]

pytestmark = pytest.mark.e2e

SMALL = ("--sim-scenes", "3", "--sim-agents", "8", "--sim-steps", "80")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path / "home"))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "TRAJOPS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def test_an_ensemble_is_one_registered_version(cli: CliRunner, home: Path) -> None:
    args = ("train", "--model", "neural", "--simulate", *SMALL, "--epochs", "1")
    trained = cli(*args, "--ensemble", "2", "--seed", "3", "--register", "--json")
    assert trained.code == 0, trained.stderr[-3000:]
    [run] = trained.json()["runs"]
    assert run["version"] == 1
    import mlflow

    mlflow.set_tracking_uri(Settings(home=home).resolved_tracking_uri)
    model = load_forecaster("models:/trajectory-forecaster/1")
    assert model.config.ensemble == 2 and len(model.nets) == 2  # type: ignore[attr-defined]
    obs = np.cumsum(np.full((3, 8, 2), 0.4), axis=1)  # (N, T_obs, 2)
    again = load_forecaster("models:/trajectory-forecaster/1")
    np.testing.assert_array_equal(model.predict(obs), again.predict(obs))  # deterministic
    refused = cli("train", "--model", "linear", "--simulate", *SMALL, "--ensemble", "3")
    assert refused.code == 2 and "--ensemble applies to the neural model" in refused.stderr


def _write(path: Path, frames: range, agents: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{f}.0\t{a}.0\t{0.04 * f + a}\t{a + 0.01 * f}" for f in frames for a in range(agents)]
    path.write_text("\n".join(lines) + "\n")


def test_all_scenes_trains_one_model_on_every_site(
    cli: CliRunner, home: Path, tmp_path: Path
) -> None:
    root = tmp_path / "eth_ucy"
    for fold, own, other in (
        ("eth", "biwi_eth", "biwi_hotel"),
        ("hotel", "biwi_hotel", "biwi_eth"),
    ):
        _write(root / fold / "test" / f"{own}.txt", range(0, 2000, 10))
        _write(root / fold / "train" / f"{other}_train.txt", range(0, 1600, 10))
        _write(root / fold / "val" / f"{other}_val.txt", range(1600, 2000, 10))
    refused = cli("train", "--model", "linear", "--data", str(root))
    assert refused.code == 2 and "--all-scenes" in refused.stderr
    trained = cli("train", "--model", "linear", "--data", str(root), "--all-scenes", "--json")
    assert trained.code == 0, trained.stderr[-3000:]
    [run] = trained.json()["runs"]
    assert run["fold"] is None and run["metrics"]["test_ade"] >= 0
    both = cli("train", "--model", "linear", "--data", str(root), "--all-scenes", "--loso")
    assert both.code == 2 and "exclude each other" in both.stderr

"""``trajops train --json`` and ``trajops cards model --json`` on a real embedded store: one
JSON document on stdout (the progress bar goes to stderr), with the run, version and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support.cli import CliRunner, cli
from trajops.settings import Settings

__all__ = ["cli"]

pytestmark = pytest.mark.e2e

SMALL = ("--sim-scenes", "3", "--sim-agents", "8", "--sim-steps", "80")


def test_train_and_model_card_json(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TRAJOPS_HOME", str(home))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "TRAJOPS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    trained = cli("train", "--model", "cv", "--simulate", "--register", *SMALL, "--json")
    assert trained.code == 0, trained.stderr[-3000:]
    assert "done" in trained.stderr, "the progress bar is on stderr"
    payload = trained.json()
    assert payload["tracking_uri"] == Settings(home=home).resolved_tracking_uri
    assert payload["model_name"] == "trajectory-forecaster" and payload["parent_run_id"] is None
    [run] = payload["runs"]
    assert set(run) == {"model", "fold", "run_id", "version", "model_uri", "metrics"}
    assert (run["model"], run["fold"], run["version"]) == ("cv", None, 1)
    assert isinstance(run["run_id"], str) and len(run["run_id"]) == 32
    assert run["model_uri"].startswith("models:/")
    assert {"test_ade", "test_fde", "val_ade"} <= set(run["metrics"])
    assert all(isinstance(v, float) for v in run["metrics"].values())

    unregistered = cli("train", "--model", "cv", "--simulate", *SMALL, "--json").json()
    assert unregistered["runs"][0]["version"] is None

    card = cli("cards", "model", "v1", "--json")
    assert card.code == 0, card.stderr[-3000:]
    facts = card.json()
    assert set(facts) == {
        "model", "description", "run_id", "registered", "params", "metrics", "evaluation",
        "performance",
    }  # fmt: skip
    assert (facts["model"], facts["run_id"]) == ("cv", run["run_id"])
    assert facts["registered"]["version"] == 1
    assert facts["metrics"]["test_ade"] == run["metrics"]["test_ade"]
    assert isinstance(facts["params"], dict) and isinstance(facts["evaluation"], dict)
    assert isinstance(facts["performance"]["groupings"], list)

"""``trajops demo --no-serve`` as a user runs it, then the store it leaves checked directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from trajops.cli.demo import DEMO_EXPERIMENT
from trajops.monitoring.reference import PROFILE_PATH
from trajops.settings import Settings
from trajops.tracking import artifacts as art

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAJOPS = Path(sys.executable).parent / "trajops"


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TRAJOPS_HOME": str(home)}
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    return subprocess.run(
        [str(TRAJOPS), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_demo_trains_registers_and_promotes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = _run(
        "demo",
        "--no-serve",
        "--epochs",
        "2",
        "--scenes",
        "3",
        "--agents",
        "10",
        "--steps",
        "80",
        home=home,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "champion -> v" in demo.stdout and "challenger -> v" in demo.stdout
    assert "Traceback" not in demo.stderr

    listed = _run("models", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    versions = {v["version"]: v for v in payload["versions"]}
    assert sorted(versions) == [1, 2, 3]
    assert {v["tags"]["model"] for v in versions.values()} == {"cv", "linear", "neural"}
    champion, challenger = payload["aliases"]["champion"], payload["aliases"]["challenger"]
    assert champion != challenger
    # Best test ADE is champion, runner-up is challenger.
    ranked = sorted(versions.values(), key=lambda v: v["metrics"]["test_ade"])
    assert [ranked[0]["version"], ranked[1]["version"]] == [champion, challenger]
    assert versions[champion]["aliases"] == ["champion"]

    settings = Settings(home=home)
    client = MlflowClient(settings.resolved_tracking_uri)
    experiment = client.get_experiment_by_name(DEMO_EXPERIMENT)
    assert experiment is not None
    assert experiment.artifact_location == settings.artifact_root.as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}

    run = client.get_run(versions[champion]["run_id"])
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {art.EVALUATION_PATH, art.MODEL_CARD_PATH, "plots", "reference"} <= files
    assert {f.path for f in client.list_artifacts(run.info.run_id, "reference")} == {
        PROFILE_PATH,
        "reference/calibration.json",
    }
    contexts = {
        t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"
    }
    assert contexts == {"training", "validation", "testing"}
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "simulated-train",
        "simulated-val",
        "simulated-test",
    }
    assert run.data.tags["data.digest"] == versions[champion]["tags"]["data.digest"]

    history = _run("models", "history", "--json", home=home)
    events = [json.loads(line) for line in history.stdout.splitlines()]
    assert [(e["alias"], e["to_version"]) for e in events] == [
        ("champion", champion),
        ("challenger", challenger),
    ]

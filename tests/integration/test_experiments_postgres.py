"""Experiments against real PostgreSQL and a real MLflow registry, driven through the CLI.

Two registered versions (champion v1, challenger v2); ``trajops experiments create`` pins
them; somebody moves ``champion`` to v2 during the test; simulated traffic (routed by the
real router, written by the real log writer) makes the challenger clearly worse;
``trajops experiments evaluate`` rolls back on its own: experiment ended, traffic back to the
control, an ``experiment_rollback`` alert, and ``champion`` restored to v1 in the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from tests._support.mlflow_uris import mlflow_uris
from tests._support.services import shared_pg_available, temp_database
from trajops.experiments import ExperimentRepository, ExperimentRouter, exposure_row
from trajops.logpipe import LogWriter
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import log_forecaster
from trajops.registry.adapter import Registry
from trajops.registry.history import read_history
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import Alert

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not shared_pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running"
    ),
]
MODEL = "trajectory-forecaster"


def _trajops(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("trajops")
    cmd = [str(script)] if script.exists() else [shutil.which("trajops") or "trajops"]
    proc = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("exp-pg")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("exp", artifact_location=(root / "art").as_uri())
    with mlflow_uris(uri):
        for _ in range(2):
            with mlflow.start_run(experiment_id=exp):
                log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "challenger", "2")
    with temp_database("trajops_exp") as db:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRAJOPS_", "MLFLOW_"))}
        yield {
            **clean,
            "TRAJOPS_HOME": str(root / "home"),
            "TRAJOPS_TRACKING_URI": uri,
            "TRAJOPS_DATABASE_URL": db,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }


def test_cli_bad_arm_exits_2_without_traceback(env: dict[str, str]) -> None:
    proc = _trajops(env, "experiments", "create", "--name", "x", "--arm", "oops", ok=False)
    assert proc.returncode == 2
    assert "name=alias_or_version" in proc.stderr and "Traceback" not in proc.stderr
    proc = _trajops(
        env,
        "experiments",
        "create",
        "--name",
        "x",
        "--arm",
        "c=champion",
        "--arm",
        "t=v9",
        ok=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_worse_challenger_rolls_back_and_restores_aliases(env: dict[str, str]) -> None:
    out = _trajops(
        env,
        "experiments",
        "create",
        "--name",
        "cv-v2",
        "--arm",
        "control=champion:70",
        "--arm",
        "treatment=challenger:30",
        "--min-samples",
        "50",
    )
    exp_id = out.stdout.strip().splitlines()[-1]
    assert len(exp_id) == 12 and "v2" in out.stdout

    settings = Settings(home=Path(env["TRAJOPS_HOME"]), tracking_uri=env["TRAJOPS_TRACKING_URI"])
    registry = Registry(MlflowClient(env["TRAJOPS_TRACKING_URI"]), MODEL)
    registry.set_alias("champion", 2)  # an alias moves while the experiment runs

    store = Store(env["TRAJOPS_DATABASE_URL"])
    router = ExperimentRouter(ExperimentRepository(store))
    writer = LogWriter(store, settings.spool_dir).start()
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    for i in range(1000):
        route = router.route(f"agent-{i}")
        assert route is not None and route.model_ref in {"1", "2"}
        writer.submit(
            "experiment_exposures",
            [exposure_row(route, request_id=f"r{i}", n_agents=1, latency_ms=3.0)],
        )
        ade = float(rng.lognormal(np.log(0.5 if route.arm == "control" else 0.65), 0.5))
        writer.submit(
            "feedback",
            [
                {
                    "request_id": f"r{i}",
                    "agent_key": f"k{i}",
                    "created_at": now,
                    "model_version": route.model_ref,
                    "variant": route.variant,
                    "positions": [[0.0, 0.0]],
                    "n_steps": 1,
                    "ade": ade,
                    "fde": 2 * ade,
                }
            ],
        )
    writer.close()
    assert writer.written == 2000

    status = json.loads(_trajops(env, "experiments", "status", exp_id, "--json").stdout)
    arms = {a["name"]: a for a in status["arms"]}
    assert arms["control"]["requests"] + arms["treatment"]["requests"] == 1000
    assert 0.25 < arms["treatment"]["requests"] / 1000 < 0.35  # 70/30 split
    assert status["srm_p_value"] > 0.001
    assert status["verdict"] == "challenger_worse" and status["status"] == "running"

    done = json.loads(_trajops(env, "experiments", "evaluate", exp_id, "--json").stdout)
    assert done["action"] == "rolled_back" and done["status"] == "rolled_back"
    assert registry.aliases() == {"champion": 1, "challenger": 2}
    last = read_history(registry, "champion")[-1]
    assert (last.action, last.from_version, last.to_version) == ("rollback", 2, 1)
    router.invalidate()
    assert router.route("agent-1") is None
    with store.session() as session:
        rules = session.execute(select(Alert.rule).where(Alert.status == "firing")).scalars()
        assert "experiment_rollback" in list(rules)
    listed = json.loads(_trajops(env, "experiments", "list", "--json").stdout)
    assert [r["status"] for r in listed] == ["rolled_back"]
    proc = _trajops(env, "experiments", "promote", exp_id, ok=False)
    assert proc.returncode == 2 and "rolled back" in proc.stderr
    store.dispose()

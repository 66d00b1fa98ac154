"""The logged pyfunc is a standard MLflow model: ``mlflow models serve`` answers a request.

Registers a constant-velocity version in a SQLite registry, serves it with the stock MLflow
scoring server (``--env-manager local``) and posts one ``dataframe_split`` request with params.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest

from tests._support.services import free_port
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import OUTPUT_COLUMNS, example_obs, log_forecaster, obs_to_frame
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.tracking.backend import connect, ensure_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120


def test_mlflow_models_serve_scores_a_dataframe_split(
    embedded_settings: Settings, tmp_path: Path
) -> None:
    client = connect(embedded_settings)
    with mlflow.start_run(experiment_id=ensure_experiment(embedded_settings, client)) as run:
        info = log_forecaster(ConstantVelocity())
    registry = Registry(client, embedded_settings.model_name)
    version = registry.create_version(model_id=info.model_id, run_id=run.info.run_id, tags={})

    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": embedded_settings.resolved_tracking_uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the server execs `uvicorn`
    }
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            version.uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "scoring server did not start"
            time.sleep(0.5)

        frame = obs_to_frame(example_obs(3), agent_ids=["a", "b", "c"], scene_ids=["s", "s", "t"])
        split = frame.to_dict(orient="split")
        body = {
            "dataframe_split": {"columns": split["columns"], "data": split["data"]},
            "params": {"num_samples": 2, "seed": 7},
        }
        response = httpx.post(f"{url}/invocations", json=body, timeout=30)
        assert response.status_code == 200, response.text
        rows = response.json()["predictions"]
        assert len(rows) == 6
        assert list(rows[0]) == OUTPUT_COLUMNS
        assert [(r["agent_id"], r["sample"]) for r in rows[:2]] == [("a", 0), ("a", 1)]
        # Sample 0 continues the last observed step (constant velocity).
        step = frame.loc[0, "x_7"] - frame.loc[0, "x_6"]
        assert rows[0]["x_0"] == pytest.approx(frame.loc[0, "x_7"] + step, abs=1e-5)

        bad = httpx.post(
            f"{url}/invocations",
            json={"dataframe_split": {"columns": ["x_0"], "data": [[1.0]]}},
            timeout=30,
        )
        assert (
            bad.status_code == 400
        )  # the signature rejects a frame without the contract's columns
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (it execs uvicorn workers)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

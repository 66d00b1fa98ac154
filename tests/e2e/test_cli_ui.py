"""``trajops ui`` as a user runs it: the MLflow UI on the home's store shows the project's
experiments, and a SIGTERM (a container stop, a supervisor) stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from tests._support.services import free_port
from trajops.settings import Settings
from trajops.tracking.backend import connect, ensure_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The command through its own one-command app: the same function the entry point runs.
UI = "import typer; from trajops.cli.ui import ui; typer.run(ui)"


def test_the_ui_serves_the_homes_store_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    experiment_id = ensure_experiment(settings, connect(settings), "ui-visible")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAJOPS_", "MLFLOW_"))}
    log = (tmp_path / "ui.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", UI, "--port", str(port)],
        env={**env, "TRAJOPS_HOME": str(home)},
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the teardown can take the mlflow server with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the UI did not answer /health in 120 s")
        experiment = MlflowClient(url).get_experiment(experiment_id)
        assert experiment.name == "ui-visible"
        assert experiment.artifact_location == settings.artifact_root.as_uri()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
    assert f"MLflow UI on {url}" in (tmp_path / "ui.log").read_text()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

"""``trajops serve`` as a user runs it: a real process on a free port, an API key made with
``trajops keys create``, predictions, and a SIGTERM that flushes the prediction and audit logs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._support.faults import stored_counts
from tests._support.registry import build_registry

pytestmark = pytest.mark.e2e

MODEL = "trajectory-forecaster"


def trajops_command() -> list[str]:
    script = Path(sys.executable).with_name("trajops")
    return [str(script)] if script.exists() else [shutil.which("trajops") or "trajops"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of a user whose registry holds one CV champion."""
    root = tmp_path_factory.mktemp("e2e-serve")
    uri = build_registry(root).uri
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRAJOPS_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))
    }
    return {**clean, "TRAJOPS_HOME": str(root / "home"), "TRAJOPS_TRACKING_URI": uri}


@pytest.fixture(scope="module")
def api_key(env: dict[str, str]) -> str:
    """A key created the way a user does: ``trajops keys create`` prints it on its last line."""
    done = subprocess.run(
        [*trajops_command(), "keys", "create", "--name", "e2e", "--scopes", "predict,feedback"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def stored_rows(env: dict[str, str], request_ids: list[str]) -> tuple[int, int]:
    """Prediction rows and audit rows of ``request_ids`` in the embedded store."""
    return stored_counts(f"sqlite:///{Path(env['TRAJOPS_HOME']) / 'trajops.db'}", request_ids)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("server not ready in time")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_process_predicts(env: dict[str, str], api_key: str, workers: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [*trajops_command(), "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_ready(url, proc)
        body = {"agents": [{"agent_id": "e2e", "positions": [[0.5 * i, 1.0] for i in range(8)]}]}
        key = {"X-API-Key": api_key}
        assert httpx.post(f"{url}/v1/predict", json=body, timeout=10).status_code == 401
        request_ids = []
        for _ in range(2 * workers):  # new connections: each worker gets its share
            r = httpx.post(f"{url}/v1/predict", json=body, headers=key, timeout=10)
            assert r.status_code == 200, r.text
            request_ids.append(r.json()["request_id"])
            out = r.json()
            assert out["model"] == {
                "name": MODEL,
                "version": "1",
                "alias": "champion",
                "run_id": out["model"]["run_id"],
            }
            assert out["predictions"][0]["positions"][0] == [4.0, 1.0]
        models = httpx.get(f"{url}/v1/models", headers=key, timeout=10).json()
        assert models["aliases"]["champion"] == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    log = proc.stderr.read().decode()  # type: ignore[union-attr]
    # uvicorn re-raises SIGTERM after a graceful shutdown when it runs a single process
    assert code in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log, "the lifespan closed the pool and cache"
    # No worker was killed as unresponsive while it started (uvicorn's supervisor logs
    # "Child process [pid] died" when it replaces one).
    assert " died" not in log, log[-2000:]
    assert log.count("Application startup complete") == workers, log[-2000:]
    # SIGTERM drains: every prediction and its audit row reached the store before exit.
    assert stored_rows(env, request_ids) == (2 * workers, 2 * workers)


def test_serve_rejects_bad_options_without_traceback(env: dict[str, str]) -> None:
    done = subprocess.run(
        [*trajops_command(), "serve", "--workers", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "workers must be between 1 and 64" in done.stderr
    assert "Traceback" not in done.stderr

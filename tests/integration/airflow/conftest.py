"""Airflow with a SQLite metadata database in a temp folder, the repo's ``dags/``, and a receiver.

Airflow is never imported here: it reads its configuration and sets up logging at import, so
DAG runs happen in child processes (``_dag_runner.py``) with their own environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
RUNNER = Path(__file__).with_name("_dag_runner.py")
MARKER = "TRAJOPS-DAG-RESULT "


@dataclass
class Airflow:
    """A migrated Airflow home; runs DAG actions in child processes."""

    home: Path
    base_env: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base_env, **extra}

    def start(self, actions: list[dict[str, Any]], env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(RUNNER), json.dumps(actions)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def finish(proc: subprocess.Popen[str], *, timeout: float) -> list[dict[str, Any]]:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"DAG runner timed out after {timeout} s:\n{out[-6000:]}")
        results = [
            json.loads(line[len(MARKER) :]) for line in out.splitlines() if line.startswith(MARKER)
        ]
        if proc.returncode != 0:
            pytest.fail(f"DAG runner exited {proc.returncode}:\n{out[-6000:]}")
        return results

    def run(
        self, actions: list[dict[str, Any]], env: dict[str, str], *, timeout: float = 240
    ) -> list[dict[str, Any]]:
        return self.finish(self.start(actions, env), timeout=timeout)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read Airflow's metadata database (sqlite3, no Airflow import)."""
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(self.home / "airflow.db", timeout=10)) as conn:
            return list(conn.execute(sql, args).fetchall())


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    """``airflow db migrate`` once per session on a SQLite file; tasks retry after ~1 s."""
    if importlib.util.find_spec("airflow") is None:  # the optional extra is not installed
        pytest.skip("apache-airflow is not installed: `pip install -e .[airflow]` to run DAG tests")
    home = tmp_path_factory.mktemp("airflow")
    drop = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJOPS_") and k not in drop}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",  # as after `airflow dags unpause`
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PYTHONPATH=str(REPO),
        TRAJOPS_PIPELINE_RETRIES="2",
        TRAJOPS_PIPELINE_RETRY_DELAY_S="1",
        TRAJOPS_PIPELINE_MAX_RETRY_DELAY_S="5",
        TRAJOPS_PIPELINE_TASK_TIMEOUT_S="180",
    )
    airflow_bin = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow_bin), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Airflow(home=home, base_env=env)


@dataclass
class Receiver:
    """A real HTTP endpoint on loopback collecting the JSON bodies POSTed to it."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [b for b in list(self.bodies) if match(b)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"nothing matching arrived in {timeout} s; got {self.bodies}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The webhook notifier's target (``TRAJOPS_ALERT_WEBHOOK_URL``)."""
    bodies: list[dict[str, Any]] = []

    class Collect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", 0))
            bodies.append(json.loads(self.rfile.read(size)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:  # keep pytest's output clean
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_port}/hook", bodies)
    finally:
        server.shutdown()
        server.server_close()

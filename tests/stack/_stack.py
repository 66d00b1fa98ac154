"""The compose stack of tests/stack: its images, its environment file, its bring-up in
steps, and the helpers the tests use on it (conftest.py holds the fixture)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests._support.podman import ROOT, podman, timed
from tests._support.services import free_port
from tests._support.waiting import eventually

TAG = "stack test"
APP_IMAGE = "localhost/trajops:stack-test"
NEXT_IMAGE = "localhost/trajops:stack-test-next"
DASHBOARD_IMAGE = "localhost/trajops-dashboard:stack-test"
AIRFLOW_IMAGE = "localhost/trajops-airflow:stack-test"
PROFILES = ("--profile", "dashboard", "--profile", "airflow", "--profile", "train")
SERVICES = ("postgres", "redis", "nginx")
COMPOSE = ROOT / "deploy" / "compose.yaml"
PODMAN_COMPOSE = str(Path(sys.executable).parent / "podman-compose")
WALKER = [[0.5 * i, 0.0] for i in range(8)]
PORTS = ("HTTP_PORT", "MLFLOW_PORT", "DASK_DASHBOARD_PORT", "DASHBOARD_PORT", "AIRFLOW_PORT")
"""The ports compose publishes, each a free one on this host for the run."""


@dataclass
class Stack:
    """A running compose project: its name, environment file and an admin key."""

    project: str
    env: dict[str, str]
    env_file: Path
    settings: dict[str, str]
    """What the .env file holds (secrets, images, ports)."""
    key: str = ""
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        """The published ports, from the .env file."""
        return {name: int(self.settings[name]) for name in PORTS}

    @property
    def url(self) -> str:
        """nginx, the API's front door."""
        return f"http://127.0.0.1:{self.ports['HTTP_PORT']}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``podman-compose ARGS`` on this project; fails the test on a non-zero exit."""
        done = subprocess.run(
            [PODMAN_COMPOSE, "-p", self.project, "--env-file", str(self.env_file),
             "-f", str(COMPOSE), *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stderr[-4000:]}"
        return done

    def containers(self, service: str) -> list[str]:
        """Names of the running containers of ``service``."""
        listed = podman(
            "ps", "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}",
            env=self.env,
        )  # fmt: skip
        return sorted(listed.stdout.split())

    def phase(self, label: str, started: float) -> None:
        self.phases[label] = timed(TAG, label, started)

    def api(self) -> httpx.Client:
        return _PatientClient(base_url=self.url, headers={"X-API-Key": self.key}, timeout=60)


class _PatientClient(httpx.Client):
    """A client that waits out the key's rate limit (429 + Retry-After), as a well-behaved
    client does: the lifecycle sends requests back to back, faster than one key's 50/s."""

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:
        for _ in range(20):
            answer = super().request(*args, **kwargs)
            if answer.status_code != 429:
                return answer
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        return answer


def write_env_file(folder: Path) -> tuple[Path, dict[str, str]]:
    """deploy/.env for this run: fresh secrets, the local images, free ports."""
    ports = {name: free_port() for name in PORTS}
    values = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "TRAJOPS_API_KEY_PEPPER": secrets.token_hex(32),
        "TRAJOPS_PSEUDONYM_KEY": secrets.token_hex(32),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
        "APP_IMAGE": APP_IMAGE,
        "DASHBOARD_IMAGE": DASHBOARD_IMAGE,
        "AIRFLOW_IMAGE": AIRFLOW_IMAGE,
        **{f"{s.upper()}_IMAGE": f"localhost/trajops-{s}:latest" for s in SERVICES},
        "BIND_ADDRESS": "127.0.0.1",
        **{name: str(port) for name, port in ports.items()},
        "MLFLOW_ALLOWED_HOSTS": f"mlflow:5000,127.0.0.1:{ports['MLFLOW_PORT']}",
    }
    path = folder / "stack.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path, values


def wait_http(url: str, *, timeout_s: float, what: str) -> None:
    def answer() -> int:
        try:
            return httpx.get(url, timeout=5).status_code
        except httpx.TransportError:
            return 0

    status = eventually(answer, lambda code: code == 200, timeout_s=timeout_s, every_s=0.5)
    assert status == 200, f"{what}: {url} answered {status or 'nothing'} after {timeout_s} s"


def wait_exec(stack: Stack, container: str, *command: str, timeout_s: float) -> None:
    done = eventually(
        lambda: podman("exec", container, *command, env=stack.env, timeout=30),
        lambda run: run.returncode == 0,
        timeout_s=timeout_s,
        every_s=1.0,
    )
    assert done.returncode == 0, f"{container}: {' '.join(command)}: {done.stderr[-2000:]}"


def bring_up(stack: Stack) -> None:
    started = time.monotonic()
    stack.compose("up", "-d", "--no-build", "postgres", "redis")
    (postgres,) = stack.containers("postgres")
    wait_exec(stack, postgres, "pg_isready", "-h", "127.0.0.1", "-U", "trajops", timeout_s=120)
    stack.compose("up", "-d", "--no-build", "--no-deps", "mlflow")
    wait_http(f"http://127.0.0.1:{stack.ports['MLFLOW_PORT']}/health", timeout_s=180, what="mlflow")
    stack.phase("stores and MLflow up", started)

    started = time.monotonic()
    stack.compose(
        "--profile", "train", "run", "--rm", "--no-deps", "train", "demo", "--no-serve",
        "--epochs", "1", "--scenes", "3", "--agents", "8", "--steps", "60", timeout=900,
    )  # fmt: skip
    created = stack.compose(
        "--profile", "train", "run", "--rm", "--no-deps", "train",
        "keys", "create", "--name", "stack-test", "--scopes", "admin",
    )  # fmt: skip
    stack.key = created.stdout.strip().splitlines()[-1]
    stack.phase("train profile: simulate, train, register, promote; an admin key", started)

    started = time.monotonic()
    stack.compose("up", "-d", "--no-build", "--no-deps", "api", "dask-scheduler", "dask-worker")
    stack.compose("up", "-d", "--no-build", "--no-deps", "nginx")
    stack.compose("--profile", "dashboard", "up", "-d", "--no-build", "--no-deps", "dashboard")
    stack.compose("--profile", "airflow", "up", "-d", "--no-build", "--no-deps", "airflow")
    wait_http(f"{stack.url}/readyz", timeout_s=300, what="the API through nginx")
    for replica in stack.containers("api"):
        wait_exec(stack, replica, "python3", "-c", READY, timeout_s=300)
    stack.phase("API replicas, nginx, Dask, dashboard, Airflow started", started)


READY = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"

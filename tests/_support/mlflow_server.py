"""A private ``mlflow server`` (SQLite backend, proxied artifacts) that tests may kill and restart.

The server keeps its port across :meth:`PrivateMlflowServer.kill` / :meth:`start`, so clients
configured with its URL (the serving pool's registry client) see it vanish and come back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests._support.services import free_port

BIN = Path(sys.executable).parent


class PrivateMlflowServer:
    """``mlflow server`` in its own process group on a free port, data under ``root``.

    Args:
        root: folder for the artifacts, the server log and (by default) the SQLite backend.
        backend_store_uri: the backend store (default: a SQLite file under ``root``), e.g. a
            PostgreSQL database for production-like runs.
        start_timeout_s: longest wait for ``/health`` after a start.
    """

    def __init__(
        self, root: Path, *, backend_store_uri: str | None = None, start_timeout_s: float = 120.0
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.backend_store_uri = backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "mlflow-server.log"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until ``/health`` answers."""
        cmd = [
            str(BIN / "mlflow"), "server",
            "--backend-store-uri", self.backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # kill() takes the workers with it
                env={
                    **os.environ,
                    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                    # no job runner: its huey consumer processes only cost CPU in a test
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                },
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the server is gone, its port refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.proc = None


@contextmanager
def private_mlflow_server(root: Path) -> Iterator[PrivateMlflowServer]:
    """A started :class:`PrivateMlflowServer`, killed afterwards."""
    server = PrivateMlflowServer(root)
    try:
        server.start()
        yield server
    finally:
        server.kill()

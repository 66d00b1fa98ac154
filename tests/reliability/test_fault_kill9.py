"""kill -9 under load: a 2xx means the request's prediction and audit rows are durable.

A real ``trajops serve`` process under steady load; at a random instant the writer process,
the API process, or both are SIGKILLed. Afterwards (the server restarted where it died), every
request that was answered 200 has exactly its prediction row and its audit row in the store:
answered == prediction rows == audit rows, none lost, none twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._support.api_keys import issue_key
from tests._support.faults import stored_counts
from tests._support.load import SteadyLoad, served_ids
from tests._support.nginx import wait_http
from tests._support.registry import build_registry
from tests._support.services import free_port
from tests._support.waiting import eventually
from trajops.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _writer_pid(api_pid: int) -> int:
    for child in _children(api_pid):
        try:
            if b"trajops.logpipe.process" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    raise AssertionError(f"no writer process under {api_pid}")


class Server:
    """``trajops serve`` in its own session (so its whole process group can be killed)."""

    def __init__(self, home: Path, registry_uri: str) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TRAJOPS_", "MLFLOW_"))},
            "TRAJOPS_HOME": str(home),
            "TRAJOPS_TRACKING_URI": registry_uri,
            "TRAJOPS_RATE_LIMIT_PER_S": "100000",
            "TRAJOPS_RATE_LIMIT_BURST": "100000",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        trajops = str(Path(sys.executable).with_name("trajops"))
        self.proc = subprocess.Popen(
            [trajops, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(f"{self.url}/readyz", self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@contextmanager
def service(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], str]]:
    registry = build_registry(tmp_path / "registry")
    home = tmp_path / "home"
    _, token = issue_key(Settings(home=home, tracking_uri=registry.uri), scopes="predict")
    server = Server(home, registry.uri)
    server.start()
    try:
        yield server, {"X-API-Key": token}, f"sqlite:///{home / 'trajops.db'}"
    finally:
        server.stop()
        if server.proc is not None and server.proc.poll() is None:  # pragma: no cover
            os.killpg(server.proc.pid, signal.SIGKILL)


def _assert_every_answer_stored(database: str, ids: list[str]) -> None:
    assert len(ids) >= 100, "the load must be real"
    assert len(set(ids)) == len(ids)
    counts = eventually(
        lambda: stored_counts(database, ids),
        lambda c: c == (len(ids), len(ids)),
        timeout_s=60,
        every_s=0.5,
    )
    assert counts == (len(ids), len(ids)), f"answered {len(ids)}, stored {counts}"


@pytest.mark.parametrize("victim", ["writer", "api", "both"])
def test_no_answered_request_is_lost(tmp_path: Path, victim: str) -> None:
    rng = random.Random()
    with service(tmp_path) as (server, key, database):
        assert server.proc is not None
        with SteadyLoad(server.url, headers=key, rate_per_s=150, timeout_s=10) as load:
            load.wait_requests(100)
            time.sleep(rng.uniform(0.0, 1.0))  # a random instant of the load
            writer = _writer_pid(server.proc.pid)
            if victim == "writer":
                os.kill(writer, signal.SIGKILL)
            elif victim == "api":
                os.kill(server.proc.pid, signal.SIGKILL)
            else:
                os.killpg(server.proc.pid, signal.SIGKILL)
            if victim == "writer":
                load.wait_requests(200)  # the service goes on; a new writer process resumes
            else:
                server.proc.wait(10)
                time.sleep(0.5)  # requests in flight at the kill fail at the transport level
        outcomes = load.outcomes()
        if victim != "writer":
            server.start()  # the restarted service's writer adopts a log nobody drained
        ids = served_ids(outcomes)
        _assert_every_answer_stored(database, ids)

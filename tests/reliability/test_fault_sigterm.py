"""SIGTERM during load: ``trajops serve`` drains the requests in flight and flushes every
prediction and audit row before it exits.

A real process under steady load, plus a few requests whose bodies are only half uploaded when
the signal arrives (in flight by construction): each of them must be answered (200) once its
body is complete, no request may get a 5xx, and every answered request must be in the store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests._support.api_keys import issue_key
from tests._support.faults import stored_counts
from tests._support.load import Outcome, SteadyLoad, served_ids, server_errors
from tests._support.nginx import wait_http
from tests._support.registry import build_registry
from tests._support.services import free_port
from trajops.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW_REQUESTS = 4
SLOW_AGENTS = 50


class SlowUpload:
    """A prediction whose body is sent in two halves: the second only after ``release``.

    The server has parsed its headers and is reading its body when SIGTERM arrives: a request
    in flight by construction.
    """

    def __init__(self, n: int, release: threading.Event) -> None:
        body = {
            "agents": [
                {"agent_id": f"s{n}-{a}", "positions": [[a + 0.4 * t, n] for t in range(8)]}
                for a in range(SLOW_AGENTS)
            ]
        }
        self.payload = json.dumps(body).encode()
        self.release = release
        self.first_sent = threading.Event()

    def chunks(self) -> Iterator[bytes]:
        half = len(self.payload) // 2
        yield self.payload[:half]
        self.first_sent.set()  # resumed: the first half is on the wire
        if not self.release.wait(60):
            raise TimeoutError("never released")
        yield self.payload[half:]

    def send(self, url: str, key: dict[str, str]) -> Outcome:
        t0 = time.monotonic()
        headers = {**key, "content-type": "application/json"}
        try:
            r = httpx.post(f"{url}/v1/predict", content=self.chunks(), headers=headers, timeout=60)
        except httpx.HTTPError as exc:
            return Outcome(t0, time.monotonic(), None, error=type(exc).__name__)
        rid = r.json().get("request_id") if r.status_code == 200 else None
        return Outcome(t0, time.monotonic(), r.status_code, request_id=rid, error=r.text[:200])


def test_sigterm_drains_in_flight_requests_and_flushes_logs(tmp_path: Path) -> None:
    registry = build_registry(tmp_path / "registry")
    home = tmp_path / "home"
    _, token = issue_key(Settings(home=home, tracking_uri=registry.uri), scopes="predict")
    key = {"X-API-Key": token}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRAJOPS_", "MLFLOW_"))},
        "TRAJOPS_HOME": str(home),
        "TRAJOPS_TRACKING_URI": registry.uri,
        "TRAJOPS_RATE_LIMIT_PER_S": "100000",
        "TRAJOPS_RATE_LIMIT_BURST": "100000",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    trajops = str(Path(sys.executable).with_name("trajops"))
    proc = subprocess.Popen(
        [trajops, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"{url}/readyz", proc)
        with (
            SteadyLoad(url, headers=key, rate_per_s=100, timeout_s=30) as load,
            ThreadPoolExecutor(SLOW_REQUESTS) as pool,
        ):
            load.wait_requests(100)
            release = threading.Event()
            uploads = [SlowUpload(n, release) for n in range(SLOW_REQUESTS)]
            futures = [pool.submit(u.send, url, key) for u in uploads]
            assert all(u.first_sent.wait(30) for u in uploads)
            time.sleep(0.5)  # the server has parsed their headers and waits for the rest
            signalled_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # shutdown has begun: the listening socket is closed
            release.set()
            slow = [f.result(timeout=60) for f in futures]
            code = proc.wait(timeout=60)
            exited_at = time.monotonic()
            time.sleep(0.3)  # the load meets a closed port for a moment
        outcomes = load.outcomes()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read().decode() if proc.stderr else ""

    assert code in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log, log[-2000:]
    assert all(h.status == 200 for h in slow), (slow, log[-3000:])
    assert all(h.finished > signalled_at + 0.5 for h in slow), "in flight at SIGTERM"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    before = [o for o in outcomes if o.finished < signalled_at]
    assert len(before) >= 100 and all(o.status == 200 for o in before)
    refused = [o for o in outcomes if o.status != 200]
    # only the shutdown may cut requests off: a closed port, or a keep-alive connection closed
    # as the server stops (a transport error, never an HTTP error)
    assert all(o.status is None and o.finished >= signalled_at for o in refused), refused[:3]
    assert any(o.started > exited_at for o in refused), "the load outlived the server"
    ids = served_ids(outcomes)
    slow_ids = [h.request_id for h in slow if h.request_id]
    database = f"sqlite:///{home / 'trajops.db'}"
    predictions, audit = stored_counts(database, ids + slow_ids)
    assert len(slow_ids) == SLOW_REQUESTS
    assert predictions == len(ids) + SLOW_AGENTS * len(slow_ids)
    assert audit == len(ids) + len(slow_ids)

"""Two `trajops serve` replicas behind nginx (deploy/nginx.conf), sharing Redis and PostgreSQL.

nginx comes from Debian (`apt-get install nginx`); without it on PATH the module is skipped.
The shipped config is rendered with this test's ports and paths (lines marked ``# test:``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import redis

from tests._support.batch import cv_registry
from tests._support.nginx import nginx_binary, start_nginx, start_replica, stop, wait_http
from tests._support.services import free_port, shared_pg_available, temp_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NGINX = nginx_binary()
REDIS_URL = "redis://127.0.0.1:6379/0"
PEPPER = "nginx-replicas-test-pepper-0123456789"


def _skip_reason() -> str | None:
    if NGINX is None:
        return "nginx is not installed (Debian package `nginx`); skipping the replica test"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return "Redis is not running on 127.0.0.1:6379"
    if not shared_pg_available():
        return "PostgreSQL is not running on 127.0.0.1:5432"
    return None


if (_reason := _skip_reason()) is not None:
    print(_reason)
    pytest.skip(_reason, allow_module_level=True)


@dataclass
class Stack:
    url: str
    replicas: dict[int, subprocess.Popen[bytes]]
    headers: dict[str, str]
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("nginx-replicas")
    model = f"nginx-test-{uuid.uuid4().hex[:8]}"  # unique: cache keys start with the model name
    registry = cv_registry(root / "registry", model_name=model)
    with temp_database("trajops_nginx") as db_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJOPS_")}
        env |= {
            "TRAJOPS_TRACKING_URI": registry,
            "TRAJOPS_MODEL_NAME": model,
            "TRAJOPS_DATABASE_URL": db_url,
            "TRAJOPS_REDIS_URL": REDIS_URL,
            "TRAJOPS_API_KEY_PEPPER": PEPPER,
            "TRAJOPS_PSEUDONYM_KEY": PEPPER,
            "TRAJOPS_METRICS_PUBLIC": "true",
            "TRAJOPS_RATE_LIMIT_PER_S": "0",
            "TRAJOPS_POLL_INTERVAL_S": "60",
        }
        # One key in the shared store, created before any replica starts (runs the migrations).
        from trajops.security.keys import ApiKeys
        from trajops.store.db import Store

        store = Store(db_url)
        try:
            _, token = ApiKeys(store, pepper=PEPPER.encode()).create_key(
                name="nginx-test", scopes="predict"
            )
        finally:
            store.dispose()
        ports = [free_port(), free_port()]
        procs: dict[int, subprocess.Popen[bytes]] = {}
        nginx_proc: subprocess.Popen[bytes] | None = None
        try:
            for i, port in enumerate(ports):
                procs[port] = start_replica(port, env={**env, "TRAJOPS_HOME": str(root / f"h{i}")})
            for port, proc in procs.items():
                wait_http(f"http://127.0.0.1:{port}/readyz", proc)
            listen = free_port()
            nginx_proc = start_nginx(listen=listen, replicas=ports, run_dir=root / "nginx")
            yield Stack(
                url=f"http://127.0.0.1:{listen}",
                replicas=procs,
                headers={"X-API-Key": token},
                env={**env, "TRAJOPS_HOME": str(root / "h0")},
            )
        finally:
            for proc in [*procs.values(), *([nginx_proc] if nginx_proc else [])]:  # restarted too
                stop(proc)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"*{model}*"))
            if keys:
                client.delete(*keys)


def _body(x0: float) -> dict[str, object]:
    return {"agents": [{"agent_id": "a", "positions": [[x0 + 0.5 * t, 0.1 * t] for t in range(8)]}]}


def _predict_count(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    pattern = re.compile(r"^trajops_http_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.M)
    return sum(float(v) for labels, v in pattern.findall(text) if 'route="/v1/predict"' in labels)


def test_requests_spread_over_both_replicas(stack: Stack) -> None:
    before = {p: _predict_count(p) for p in stack.replicas}
    with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=10) as client:
        for i in range(40):
            r = client.post("/v1/predict", json=_body(1000.0 + i))
            assert r.status_code == 200, r.text
    served = {p: _predict_count(p) - before[p] for p in stack.replicas}
    assert sum(served.values()) == 40
    assert all(n >= 5 for n in served.values()), served


def test_an_answer_cached_by_one_replica_is_served_by_the_other(stack: Stack) -> None:
    first, second = list(stack.replicas)
    body = _body(float(uuid.uuid4().int % 5000))
    a = httpx.post(f"http://127.0.0.1:{first}/v1/predict", json=body, headers=stack.headers)
    b = httpx.post(f"http://127.0.0.1:{second}/v1/predict", json=body, headers=stack.headers)
    assert a.status_code == b.status_code == 200
    assert a.json()["cached"] is False
    assert b.json()["cached"] is True
    assert b.json()["predictions"] == a.json()["predictions"]


def test_nginx_refuses_a_body_over_the_app_limit_in_the_api_error_shape(stack: Stack) -> None:
    r = httpx.post(
        f"{stack.url}/v1/predict",
        content=b"{" + b" " * 2_000_001 + b"}",
        headers={**stack.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_nginx_refuses_oversized_headers_with_431_in_the_api_error_shape(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/v1/models", headers={**stack.headers, "x-junk": "j" * 20_000})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "headers_too_large"
    ok = httpx.get(f"{stack.url}/v1/models", headers={**stack.headers, "x-fill": "f" * 8_000})
    assert ok.status_code == 200


def _load_with_kill(
    stack: Stack, *, sig: signal.Signals, seconds: float = 3.0, concurrency: int = 8
) -> tuple[float, list[tuple[float, float, int | str]]]:
    """Load through nginx for ``seconds`` (at most 4000 requests); ``sig`` hits the first
    replica after 1 s. Returns the kill time and ``(sent, answered, status or error)``."""
    victim = next(iter(stack.replicas))
    answers: list[tuple[float, float, int | str]] = []
    end = time.monotonic() + seconds

    def worker(offset: int) -> list[tuple[float, float, int | str]]:
        out: list[tuple[float, float, int | str]] = []
        with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=15) as client:
            for i in range(offset, 4000, concurrency):
                sent = time.monotonic()
                if sent > end:
                    break
                try:
                    status: int | str = client.post(
                        "/v1/predict", json=_body(3000.0 + i)
                    ).status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                out.append((sent, time.monotonic(), status))
        return out

    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(worker, k) for k in range(concurrency)]
        time.sleep(1.0)  # load is running
        killed_at = time.monotonic()
        stack.replicas[victim].send_signal(sig)
        for f in futures:
            answers += f.result(timeout=120)
    assert stack.replicas[victim].wait(timeout=30) in (0, -int(sig))
    # the signal hit under load: answers came before it and requests were sent after it
    assert sum(done < killed_at for _, done, _ in answers) > 10
    assert sum(sent > killed_at for sent, _, _ in answers) > 10
    return killed_at, answers


def test_stopping_a_replica_under_load_fails_no_request(stack: Stack) -> None:
    """SIGTERM (what an orchestrator sends): the replica drains, nginx moves on, nothing fails."""
    _, answers = _load_with_kill(stack, sig=signal.SIGTERM)
    statuses = [s for _, _, s in answers]
    assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
    # bring the replica back for the crash test
    port = next(iter(stack.replicas))
    stack.replicas[port] = start_replica(port, env=stack.env)
    wait_http(f"http://127.0.0.1:{port}/readyz", stack.replicas[port])


def test_killing_a_replica_under_load_fails_no_request_sent_after_the_crash(stack: Stack) -> None:
    """SIGKILL (a crash): every request nginx had not started to answer is retried on the other
    replica. Only a response the dead replica was writing at that instant (headers forwarded,
    body not yet) can be cut short; nginx cannot replay a response it has started to send."""
    killed_at, answers = _load_with_kill(stack, sig=signal.SIGKILL)
    after = [s for sent, _, s in answers if sent > killed_at]
    assert after and all(s == 200 for s in after), {s: after.count(s) for s in set(after)}
    failed = [(sent, done, s) for sent, done, s in answers if s != 200]
    assert len(failed) <= 1, failed  # at most the one response in flight on the killed socket
    assert all(sent < killed_at < done for sent, done, _ in failed)

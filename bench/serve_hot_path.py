"""Per-request cost of the production additions to ``/v1/predict``, measured in isolation.

What each request pays on the event loop for monitoring and security (the I/O itself happens
in the log writer's thread):

* ``log_prediction``  pseudonymise each agent id, round inputs/outputs, queue one row per agent;
* ``audit``           build the audit row (uuid, client pseudonym, body digest) and queue it;
* ``auth``            route access (memoised), API key from the cache, scope check;
* ``rate_limit``      one in-process token-bucket step.

Each is timed with ``timeit`` (best of 5 repeats) against a real SQLite store with the
writer thread running, as in the service. Writes ``bench/results/serve_hot_path.json``.

Usage::

    .venv/bin/python bench/serve_hot_path.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def best_us(fn: Any, *, number: int, repeat: int = 5) -> float:
    """Best per-call time in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    from starlette.routing import Route

    from trajops.security.keys import ApiKeys, authorize
    from trajops.security.ratelimit import LocalRateLimiter, RateLimit
    from trajops.serving._store import open_monitor
    from trajops.serving.audit import RequestAuditor
    from trajops.serving.auth import AuthMiddleware
    from trajops.serving.metrics import ServingMetrics
    from trajops.settings import Settings
    from trajops.store.db import migrate

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="trajops-hot-") as tmp:
        settings = Settings(home=Path(tmp), log_queue_size=1_000_000)
        monitor = open_monitor(settings)
        migrate(monitor.store.engine)
        try:
            rng = np.random.default_rng(0)
            for n in (1, 10, 100):
                obs = rng.normal(size=(n, 8, 2))  # (N, T_obs, 2)
                pred = rng.normal(size=(n, 12, 2)).astype(np.float32)  # (N, T_pred, 2)
                ids = [f"agent-{i}" for i in range(n)]
                counter = iter(range(10**9))

                def log(
                    obs: np.ndarray = obs,
                    pred: np.ndarray = pred,
                    ids: list[str] = ids,
                    counter: Any = counter,
                ) -> None:
                    monitor.log_prediction(
                        request_id=f"r{next(counter)}",
                        model_name="m",
                        model_version="1",
                        variant="default",
                        agent_ids=ids,
                        scene_id="s",
                        obs=obs,
                        pred=pred,
                        step_s=0.4,
                        latency_ms=1.0,
                    )

                rows.append(
                    {
                        "step": f"log_prediction ({n} agents)",
                        "us": best_us(log, number=max(20, 2000 // n)),
                    }
                )
            auditor = RequestAuditor(monitor)
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/predict",
                "headers": [(b"content-type", b"application/json")],
                "client": ("10.0.0.7", 5555),
                "trajops.body": b'{"agents": [' + b"0" * 300 + b"]}",
                "trajops.key_id": "abcdef012345",
                "trajops.request_id": "0" * 32,
                "trajops.model_version": "1",
            }
            rows.append(
                {
                    "step": "audit row",
                    "us": best_us(lambda: auditor(scope, status=200, seconds=0.001), number=2000),
                }
            )
            keys = ApiKeys.from_settings(settings, monitor.store)
            _, token = keys.create_key(name="bench", scopes="predict")
            keys.authenticate(token)  # warm the cache, as after the first request
            guard = AuthMiddleware(
                None,  # type: ignore[arg-type]
                routes=[Route("/v1/predict", lambda r: None, methods=["POST"])],
                app_state=None,
                metrics=ServingMetrics(),
                metrics_public=False,
            )
            req = {**scope, "headers": [(b"x-api-key", token.encode())]}

            def auth() -> None:
                access = guard.access(req)
                info = keys.authenticate_cached(token)
                assert info is not None
                authorize(info, access.scope)

            rows.append({"step": "auth (cached key)", "us": best_us(auth, number=5000)})
            limiter = LocalRateLimiter(RateLimit(1e9, 10**9))
            rows.append(
                {
                    "step": "rate limit (in-process)",
                    "us": best_us(lambda: limiter.hit("abcdef012345"), number=5000),
                }
            )
            time.sleep(1.0)  # let the writer drain before closing
        finally:
            monitor.close()
    result = {
        "command": "python bench/serve_hot_path.py",
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "steps": [{**r, "us": round(r["us"], 2)} for r in rows],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_hot_path.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| step | µs per request |\n| --- | ---: |")
    for r in result["steps"]:
        print(f"| {r['step']} | {r['us']:.1f} |")


if __name__ == "__main__":
    main()

"""Load and soak: ``trajops serve`` at saturation with nothing lost, then at a fixed rate for
minutes with bounded memory.

One ``trajops serve`` process (one worker, the production path on: API key + scope + rate limit
check, validation, LRU cache, metrics, a prediction row and an audit row per request) on a
temporary PostgreSQL database and a SQLite MLflow registry with a CV champion.

* **saturation**: ``wrk`` at ``--connections`` for ``--saturation-s`` seconds, unique bodies (no
  cache hits). Pass: zero errors, and once the log writer has drained, the audit rows and the
  prediction rows of ``/v1/predict`` equal the requests the server served (its own
  ``trajops_http_requests_total`` counter; wrk's count is at most ``--connections`` lower,
  because wrk drops its in-flight requests when its time is up).
* **soak**: a fixed ``--soak-rate`` requests/s (an asyncio httpx driver, see
  ``tests/_support/load.py``) for ``--soak-s`` seconds; the server's resident memory (VmRSS) is
  sampled every few seconds. Pass: zero errors and RSS growth below 10 % from the end of the
  first ``--soak-warmup-s`` seconds to the end.

Results go to ``bench/results/load.json``.

Usage::

    .venv/bin/python bench/load.py                     # 60 s saturation + 5 min soak
    .venv/bin/python bench/load.py --saturation-s 10 --soak-s 40 --soak-warmup-s 10  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.json"
sys.path.insert(0, str(ROOT))  # shared helpers live in tests/_support

from serve import ensure_wrk, lua_for, run_wrk  # noqa: E402  (bench/serve.py, same folder)
from tests._support.batch import cv_registry  # noqa: E402
from tests._support.load import SteadyLoad, walker_body  # noqa: E402
from tests._support.nginx import stop, wait_http  # noqa: E402
from tests._support.services import free_port, temp_database  # noqa: E402

PREDICT_200 = re.compile(
    r'^trajops_http_requests_total\{[^}]*route="/v1/predict"[^}]*status="200"[^}]*\} (\S+)$',
    re.M,
)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def served(url: str, token: str) -> int:
    """``/v1/predict`` 200 responses the server counted (its Prometheus counter)."""
    import httpx

    text = httpx.get(f"{url}/metrics", headers={"X-API-Key": token}, timeout=30).text
    return int(sum(float(m) for m in PREDICT_200.findall(text)))


def stored(db_url: str) -> tuple[int, int]:
    """``(prediction rows, audit rows of /v1/predict with status 200)`` in the store."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            preds = conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
            audit = conn.execute(
                text("SELECT count(*) FROM audit_log WHERE route = '/v1/predict' AND status = 200")
            ).scalar_one()
    finally:
        engine.dispose()
    return int(preds), int(audit)


def drained(db_url: str, target: int, timeout_s: float = 120.0) -> tuple[int, int]:
    """Wait until the store holds ``target`` rows of each kind (the writer is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    counts = stored(db_url)
    while counts != (target, target) and time.monotonic() < deadline:
        time.sleep(1.0)
        counts = stored(db_url)
    return counts


def saturation(
    url: str, token: str, db_url: str, *, seconds: int, connections: int, tmp: Path
) -> dict[str, Any]:
    wrk = ensure_wrk()
    script = tmp / "predict.lua"
    script.write_text(lua_for("trajops", token))
    before = served(url, token)
    res = run_wrk(wrk, url, script, connections=connections, seconds=seconds, threads=2)
    n = served(url, token) - before
    preds, audit = drained(db_url, before + n)
    return {
        "seconds": seconds,
        "connections": connections,
        "wrk": res,
        "served": n,
        "prediction_rows": preds - before,
        "audit_rows": audit - before,
        "pass": res["errors"] == 0
        and preds - before == n
        and audit - before == n
        and 0 <= n - res["requests"] <= connections,
    }


def soak(
    url: str, token: str, pid: int, *, seconds: int, warmup_s: int, rate: float
) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    base = 10_000_000  # bodies unlike the saturation run's

    with SteadyLoad(
        url,
        headers={"X-API-Key": token},
        rate_per_s=rate,
        concurrency=16,
        body=lambda i: walker_body(base + i),
    ) as load:
        while time.monotonic() - t0 < seconds:
            samples.append((round(time.monotonic() - t0, 1), rss_bytes(pid)))
            time.sleep(5.0)
        samples.append((round(time.monotonic() - t0, 1), rss_bytes(pid)))
    outcomes = load.outcomes()
    errors = [o for o in outcomes if o.status != 200]
    baseline = min((s for s in samples if s[0] >= warmup_s), key=lambda s: s[0])[1]
    final = samples[-1][1]
    growth = (final - baseline) / baseline
    latencies = sorted(o.finished - o.started for o in outcomes if o.status == 200)
    return {
        "seconds": seconds,
        "rate_per_s": rate,
        "achieved_rps": round(len(outcomes) / (outcomes[-1].finished - outcomes[0].started), 1),
        "requests": len(outcomes),
        "errors": len(errors),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
        "rss_after_warmup_mb": round(baseline / 2**20, 1),
        "rss_final_mb": round(final / 2**20, 1),
        "rss_max_mb": round(max(s[1] for s in samples) / 2**20, 1),
        "rss_growth": round(growth, 4),
        "rss_samples_mb": [(t, round(b / 2**20, 1)) for t, b in samples],
        "pass": not errors and growth < 0.10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--saturation-s", type=int, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--soak-s", type=int, default=300)
    parser.add_argument("--soak-warmup-s", type=int, default=30)
    parser.add_argument("--soak-rate", type=float, default=50.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trajops-bench-load-"))
    registry = cv_registry(root / "registry")
    pepper = uuid.uuid4().hex * 2
    with temp_database("trajops_bench_load") as db_url:
        from trajops.security.keys import ApiKeys
        from trajops.store.db import Store

        store = Store(db_url)
        _, token = ApiKeys(store, pepper=pepper.encode()).create_key(name="bench", scopes="admin")
        store.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAJOPS_", "MLFLOW_"))}
        env |= {
            "TRAJOPS_HOME": str(root / "home"),
            "TRAJOPS_TRACKING_URI": registry,
            "TRAJOPS_DATABASE_URL": db_url,
            "TRAJOPS_API_KEY_PEPPER": pepper,
            "TRAJOPS_PSEUDONYM_KEY": pepper,
            "TRAJOPS_RATE_LIMIT_PER_S": "100000",
            "TRAJOPS_RATE_LIMIT_BURST": "100000",
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = root / "serve.log"
        with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would stall the server
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("trajops")), "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_http(f"{url}/readyz", proc)
            sat = saturation(
                url, token, db_url, seconds=args.saturation_s, connections=args.connections,
                tmp=root,
            )  # fmt: skip
            print(json.dumps({k: v for k, v in sat.items()}), flush=True)
            soaked = soak(
                url, token, proc.pid, seconds=args.soak_s, warmup_s=args.soak_warmup_s,
                rate=args.soak_rate,
            )  # fmt: skip
            print(json.dumps({k: v for k, v in soaked.items() if k != "rss_samples_mb"}))
        finally:
            stop(proc)
    result = {
        "command": "python bench/load.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "saturation": sat,
        "soak": soaked,
        "pass": sat["pass"] and soaked["pass"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"pass: {result['pass']}  -> {args.output}")


if __name__ == "__main__":
    main()

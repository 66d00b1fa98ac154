"""Replica benchmark: /v1/predict throughput with 1 vs 2 `trajops serve` replicas behind nginx.

One run starts two replicas (sharing Redis for the cache and rate limits, a temporary
PostgreSQL database as the store, one SQLite MLflow registry with a CV champion) and two nginx
instances rendered from ``deploy/nginx.conf``: one in front of replica 1 only, one in front of
both. ``wrk`` then drives each in turn, alternating (1, 2, 1, 2 ...) so both see the same
background load, plus one point straight at replica 1 (no nginx) to show what the proxy costs.
Every request carries unique positions, so the cache never answers.

Results go to ``bench/results/replicas.json``.

Usage::

    .venv/bin/python bench/replicas.py                  # 3 rounds of 10 s per point
    .venv/bin/python bench/replicas.py --rounds 1 --duration 5   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the shared helpers of the replica test live in tests/_support

from serve import ensure_wrk, parse_wrk  # noqa: E402  (bench/serve.py, same folder)
from tests._support.batch import cv_registry  # noqa: E402
from tests._support.nginx import start_nginx, start_replica, stop, wait_http  # noqa: E402
from tests._support.services import free_port, temp_database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "replicas.json"
REDIS_URL = "redis://127.0.0.1:6379/0"

LUA = """
local counter = 0
local offset = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) offset = (tonumber(args[1]) or 0) + tid * 100000 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
function request()
  counter = counter + 1
  local x = ((offset + counter) %% 1000000) * 0.01
  local p = {}
  for t = 0, 7 do p[#p + 1] = string.format("[%%.3f,%%.3f]", x + 0.5 * t, 0.1 * t) end
  local body = '{"agents":[{"agent_id":"a","positions":[' .. table.concat(p, ",") .. ']}]}'
  return wrk.format(nil, "/v1/predict", nil, body)
end
"""


def run_wrk(
    wrk: str, url: str, *, script: Path, seconds: int, connections: int, threads: int, base: int
) -> dict[str, float]:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        str(base),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    wrk = ensure_wrk()
    root = Path(tempfile.mkdtemp(prefix="trajops-bench-replicas-"))
    model = f"bench-replicas-{uuid.uuid4().hex[:8]}"
    registry = cv_registry(root / "registry", model_name=model)
    pepper = uuid.uuid4().hex * 2
    procs: list[subprocess.Popen[bytes]] = []
    points: list[dict[str, Any]] = []
    with temp_database("trajops_bench_replicas") as db_url:
        from trajops.security.keys import ApiKeys
        from trajops.store.db import Store

        store = Store(db_url)
        _, token = ApiKeys(store, pepper=pepper.encode()).create_key(name="bench", scopes="predict")
        store.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJOPS_")} | {
            "TRAJOPS_TRACKING_URI": registry,
            "TRAJOPS_MODEL_NAME": model,
            "TRAJOPS_DATABASE_URL": db_url,
            "TRAJOPS_REDIS_URL": REDIS_URL,
            "TRAJOPS_API_KEY_PEPPER": pepper,
            "TRAJOPS_PSEUDONYM_KEY": pepper,
            "TRAJOPS_RATE_LIMIT_PER_S": "0",
            "TRAJOPS_POLL_INTERVAL_S": "60",
        }
        try:
            ports = [free_port(), free_port()]
            for i, port in enumerate(ports):
                procs.append(start_replica(port, env=env | {"TRAJOPS_HOME": str(root / f"h{i}")}))
            for port, proc in zip(ports, procs, strict=True):
                wait_http(f"http://127.0.0.1:{port}/readyz", proc)
            fronts = {}
            for n in (1, 2):
                listen = free_port()
                procs.append(
                    start_nginx(listen=listen, replicas=ports[:n], run_dir=root / f"nginx-{n}")
                )
                fronts[n] = f"http://127.0.0.1:{listen}"
            script = root / "predict.lua"
            script.write_text(LUA % {"key": token})
            targets = [("direct", 1, f"http://127.0.0.1:{ports[0]}")]
            for _ in range(args.rounds):
                targets += [("nginx", 1, fronts[1]), ("nginx", 2, fronts[2])]
            for k, (via, n, url) in enumerate(targets):
                common = {
                    "script": script,
                    "connections": args.connections,
                    "threads": args.threads,
                }
                run_wrk(wrk, url, seconds=args.warmup, base=k * 2_000_000 + 1_000_000, **common)
                res = run_wrk(wrk, url, seconds=args.duration, base=k * 2_000_000, **common)
                point = {"via": via, "replicas": n, **res, "load_avg_1m": os.getloadavg()[0]}
                points.append(point)
                print(json.dumps(point), flush=True)
        finally:
            for proc in reversed(procs):
                stop(proc)

    def mean(n: int, key: str) -> float:
        return statistics.mean(p[key] for p in points if p["via"] == "nginx" and p["replicas"] == n)

    summary = {n: {k: round(mean(n, k), 2) for k in ("rps", "p50_ms", "p99_ms")} for n in (1, 2)}
    result = {
        "command": "python bench/replicas.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "config": {k: v for k, v in vars(args).items() if k != "output"} | {"model": "cv"},
        "points": points,
        "nginx_1_replica": summary[1],
        "nginx_2_replicas": summary[2],
        "speedup_2_vs_1": round(summary[2]["rps"] / summary[1]["rps"], 3),
        "errors": sum(int(p["errors"]) for p in points),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("nginx_1_replica", "nginx_2_replicas", "speedup_2_vs_1", "errors")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Cost of the service's own code per ``/v1/predict`` request: this checkout against an earlier
commit, without the HTTP server and without the machine's noise.

The assembled app (``create_app``: auth, rate limit, body limit, metrics, audit row, the fast
path, validation, cache, forecast, prediction-log row handed to the log writer process) is
driven in-process as an ASGI callable, one unique one-agent request after the other (cache
misses, as ``bench/serve.py``'s ``trajops`` series), with a real API key, store and writer
process. Not included: uvicorn's HTTP parsing and socket writes, which the echo endpoint pays
as well, and the writer process (``bench/log_writer.py`` measures it).

Two measurements, for the checkout and for ``--baseline`` (a ``git worktree`` imported through
``PYTHONPATH``, as ``bench/serve_compare.py`` does), each with a store of its own:

* **instructions per request** under ``valgrind --tool=callgrind``, counted on 1,000 and 3,000
  requests after 1,000 of warm-up, the difference divided by 2,000 (``bench/_callgrind.py``);
  all threads of the API process count (the log pipe's sender and status reader too);
* **CPU µs per request** (``time.process_time`` of the API process over ``--requests``
  requests), the two codes interleaved over ``--rounds``; medians.

The request bodies are made before the counted part. A request that waits for the log
writer's back-pressure would add work that depends on timing: the CPU rounds record the
seconds waited (``backpressure_s``, 0 when the writer process kept up); under callgrind the
API process runs ~50x slower than its writer process, which never falls behind. Writes
``bench/results/serve_instructions.json``.

Usage::

    .venv/bin/python bench/serve_instructions.py --baseline 0179b3d     # ~8 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _callgrind  # instruction counts
import serve  # registry, environment, API key and results, as the serving bench makes them
import serve_compare  # the baseline's worktree and environments

ROOT = serve.ROOT
WARM_UP = 1000
_KEY_VAR = "TRAJOPS_BENCH_API_KEY"
_CG_VAR = "TRAJOPS_BENCH_CALLGRIND"


def body(i: int) -> bytes:
    """The ``i``-th request: one agent, positions of its own (as ``bench/serve.py``'s Lua)."""
    x = i * 0.001
    points = ",".join(f"[{x + 0.5 * t:.3f},{0.1 * t:.3f}]" for t in range(8))
    return ('{"agents":[{"agent_id":"a","positions":[' + points + "]}]}").encode()


def child(requests: int) -> None:
    """Drive the app of whatever ``trajops`` this interpreter imports (``PYTHONPATH``): warm-up,
    then ``requests`` requests counted; prints the CPU µs per request; under callgrind, counts
    only those and exits at once (no shutdown)."""
    from trajops.serving.app import create_app
    from trajops.settings import Settings

    app = create_app(Settings())
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-api-key", os.environ[_KEY_VAR].encode()),
    ]

    async def one(payload: bytes) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/predict",
            "raw_path": b"/v1/predict", "query_string": b"", "root_path": "",
            "headers": [*headers, (b"content-length", str(len(payload)).encode())],
            "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        messages = [{"type": "http.request", "body": payload, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"status {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}")

    async def run(payloads: list[bytes]) -> None:
        for payload in payloads:
            await one(payload)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await run([body(i) for i in range(WARM_UP)])
            counted = [body(WARM_UP + i) for i in range(requests)]
            if os.environ.get(_CG_VAR):
                with _callgrind.counting():
                    await run(counted)
                os._exit(0)  # the count is in; skip the shutdown
            started = time.process_time()
            await run(counted)
            cpu_us = (time.process_time() - started) / requests * 1e6
            waited = app.state.metrics.registry.get_sample_value(
                "trajops_log_backpressure_seconds_total"
            )
            print(f"cpu_us {cpu_us:.2f} backpressure_s {waited or 0.0:.3f}", flush=True)

    asyncio.run(main())


def _cpu_us(env: dict[str, str], requests: int) -> tuple[float, float]:
    """CPU µs per request of one child, and the seconds its requests waited for the writer."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(requests)],
        env=env,
        capture_output=True,
        text=True,
    )
    found = [line.split() for line in done.stdout.splitlines() if line.startswith("cpu_us ")]
    if done.returncode != 0 or not found:
        raise SystemExit(f"probe failed:\n{done.stderr[-2000:]}")
    return float(found[-1][1]), float(found[-1][3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="commit to compare against (required)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000, help="per CPU-time round")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return
    if not args.baseline:
        parser.error("--baseline is required")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="trajops-bench-instr-") as tmp_name:
        tmp = Path(tmp_name)
        with serve_compare.worktree(args.baseline, tmp / "baseline") as baseline:
            envs = serve_compare.side_envs(tmp, ("baseline", "current"), tmp / "baseline")
            for env in envs.values():  # an API key in each store
                env[_KEY_VAR] = serve.create_api_key(env)
            cpu: dict[str, list[float]] = {name: [] for name in envs}
            waited: dict[str, list[float]] = {name: [] for name in envs}
            for _ in range(args.rounds):
                for name, env in envs.items():  # interleaved: drift hits both alike
                    us, seconds = _cpu_us(env, args.requests)
                    cpu[name].append(round(us, 1))
                    waited[name].append(seconds)
            print(f"  CPU us per request: {cpu} (back-pressure waits, s: {waited})", flush=True)
            instructions: dict[str, int] = {}
            if _callgrind.available():
                for name, env in envs.items():
                    argv_for = {
                        n: [sys.executable, __file__, "--child", str(n)] for n in _callgrind.SIZES
                    }
                    instructions[name] = _callgrind.per_request(
                        argv_for, tmp, name, {**env, _CG_VAR: "1"}
                    )
                print(f"  instructions per request: {instructions}", flush=True)
            else:
                print("  instructions: skipped (valgrind is not installed)", flush=True)
    med = {name: statistics.median(v) for name, v in cpu.items()}
    result: dict[str, Any] = {
        "command": "python bench/serve_instructions.py " + " ".join(argv or sys.argv[1:]),
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "cpu_model": serve.cpu_model()},
        "baseline": baseline,
        "requests_per_round": args.requests,
        "cpu_us_per_request": {"median": med, "rounds": cpu},
        "backpressure_s": waited,
        "cpu_current_over_baseline": round(med["current"] / med["baseline"], 3),
        "instructions_per_request": instructions or None,
        "instructions_current_over_baseline": (
            round(instructions["current"] / instructions["baseline"], 3) if instructions else None
        ),
        "method": "in-process ASGI driver; callgrind (3000 requests - 1000) / 2000",
    }
    out = serve.write_result("serve_instructions.json", result)
    print(
        f"  current/baseline: CPU {result['cpu_current_over_baseline']}, instructions "
        f"{result['instructions_current_over_baseline']}; wrote {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()

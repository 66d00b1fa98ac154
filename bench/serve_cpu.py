"""Where the CPU of one ``/v1/predict`` request goes: per process, next to the echo baseline.

``bench/serve.py`` reports requests/s; this reports what each request costs in CPU time, by
process, under the same ``wrk`` load (same Lua scripts, servers started the same way):

* ``echo``     the bare FastAPI echo worker(s) (see ``bench/serve.py``);
* ``trajops``  the API worker(s) (event loop plus the log pipe's sender thread) and their log
  writer processes (inserts, audit chain, commits);
* ``wrk``      the load generator itself, on the same cores.

For each server and worker count it runs ``wrk`` for ``--duration`` seconds at 16 connections,
reads ``/proc/<pid>/stat`` (user + system time) of every process of the server's tree and of
``wrk`` before and after, and divides by the requests served. It also records how ``wrk``'s
connections split between the workers: the requests/s at 2 workers depend on it. On a
machine with 2 cores and ``wrk`` beside the servers, requests/s at 2 workers is bounded by the
sum of these costs.
Writes ``bench/results/serve_cpu.json``.

Usage::

    .venv/bin/python bench/serve_cpu.py            # 10 s per point (~2 minutes)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # the serving benchmark: its servers, Lua scripts and wrk parsing

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of ``pid`` so far; ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += process_tree(int(child))
    return found


def role(pid: int) -> str:
    """What a process of a server tree is (by its command line)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "trajops.logpipe.process" in cmd:
        return "log writer process"
    if "resource_tracker" in cmd:
        return "supervisor"
    if "spawn_main" in cmd or "--echo-server" in cmd or "trajops serve" in cmd:
        return "api worker"
    return "other"


def measure(
    server: serve.Server, kind: str, *, workers: int, seconds: int, tmp: Path, api_key: str
) -> dict[str, Any]:
    script = tmp / f"{kind}-cpu.lua"
    script.write_text(serve.lua_for(kind, api_key))
    serve.run_wrk("wrk", server.url, script, connections=16, seconds=2, threads=2)  # warm-up
    pids = process_tree(server.proc.pid)
    before = {pid: cpu_seconds(pid) for pid in pids}
    wrk = subprocess.Popen(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), server.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert wrk.stdout is not None
    time.sleep(seconds / 2)
    split = serve.connection_split(server.port)  # how wrk's connections landed on the workers
    out = wrk.stdout.read()
    _, status, usage = os.wait4(wrk.pid, 0)  # wrk's own CPU, exactly
    wrk.returncode = os.waitstatus_to_exitcode(status)
    result = serve.parse_wrk(out)
    requests = max(1, int(result["requests"]))
    spent: dict[str, list[float]] = {"wrk": [1, usage.ru_utime, usage.ru_stime]}
    for pid in pids:
        start, end = before.get(pid), cpu_seconds(pid)
        if start is None or end is None:
            continue
        # with several workers the server's own process is uvicorn's supervisor
        name = "supervisor" if pid == server.proc.pid and workers > 1 else role(pid)
        slot = spent.setdefault(name, [0, 0.0, 0.0])
        slot[0] += 1
        slot[1] += end[0] - start[0]
        slot[2] += end[1] - start[1]
    per_role = {
        name: {
            "processes": int(n),
            "user_us": round(user / requests * 1e6, 1),
            "system_us": round(system / requests * 1e6, 1),
            "total_us": round((user + system) / requests * 1e6, 1),
        }
        for name, (n, user, system) in spent.items()
        if n
    }
    point = {
        "kind": kind,
        "workers": workers,
        "connections": 16,
        "seconds": seconds,
        "rps": result["rps"],
        "requests": requests,
        "connection_split": split,
        "cpu_per_request": per_role,
        "server_cpu_us_per_request": round(
            sum(v["total_us"] for k, v in per_role.items() if k != "wrk"), 1
        ),
    }
    print(
        f"  {kind:8s} w={workers}  {result['rps']:7.0f} req/s  split {sorted(split.values())}  "
        + "  ".join(f"{k}: {v['total_us']:.0f} us" for k, v in per_role.items()),
        flush=True,
    )
    return point


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    args = parser.parse_args(argv)
    serve.ensure_wrk()
    points: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="trajops-bench-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        env = serve.bench_env(tmp, serve.build_registry(tmp))
        api_key = serve.create_api_key(env)
        for workers in (1, 2):
            for kind in ("echo", "trajops"):
                server = serve.start_server(kind, workers=workers, env=env, logs=tmp)
                try:
                    points.append(
                        measure(
                            server,
                            kind,
                            workers=workers,
                            seconds=args.duration,
                            tmp=tmp,
                            api_key=api_key,
                        )
                    )
                finally:
                    serve.stop(server)
    result = {
        "command": "python bench/serve_cpu.py",
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "cpu_model": serve.cpu_model()},
        "unit": "CPU microseconds per request (user + system), by process role",
        "points": points,
    }
    out = serve.write_result("serve_cpu.json", result)
    print(f"wrote {out.relative_to(serve.ROOT)}")


if __name__ == "__main__":
    main()

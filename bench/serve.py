"""Serving benchmark: trajops /v1/predict against `mlflow models serve` (the floor) and a bare echo.

Servers on loopback, each driven by ``wrk`` with a Lua script that makes every request body
unique (so the trajops cache does not answer from memory):

* ``trajops``  ``trajops serve`` with the production path on (API key + scope + rate limit,
  validation, LRU cache, metrics, an audit row and a prediction log row per request);
* ``mlflow``   ``mlflow models serve --env-manager local`` of the same registered CV model;
* ``echo``     (informational) a bare FastAPI endpoint that parses and returns the same JSON
  body, served by uvicorn with its own httptools protocol: the stack's ceiling.

Informational series beside them: ``trajops_cached`` (one fixed body: the cache-hit path) and
``trajops_thread`` (the log writer as a thread, the writer process's baseline).

The floor checked at every point (workers x connections): trajops serves >= 3x mlflow's
requests/s, its p99 latency is <= 1/5 of mlflow's, and it answers without errors. The exit
status is 1 when any point misses it. trajops/echo is reported, not judged (the 50 % echo
target is retired).

Every point runs ``--duration`` seconds after the warm-up, at each concurrency and worker
count. Results go to ``bench/results/serve.json`` (``serve-quick.json`` with ``--quick``) and,
for full runs, into the table of ``docs/performance.md``.

Usage::

    .venv/bin/python bench/serve.py --quick   # 3 s per point (~2 minutes), the floor check
    .venv/bin/python bench/serve.py           # 20 s per point, the numbers we report
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
DOC_START, DOC_END = "<!-- bench:serve:start -->", "<!-- bench:serve:end -->"
MODEL = "trajectory-forecaster"
KINDS = ("echo", "trajops", "trajops_cached", "trajops_thread", "mlflow")
SERVERS = ("echo", "trajops", "trajops_thread", "mlflow")
"""``trajops_thread``: the same service with the log writer as a thread of the API process
(``TRAJOPS_LOG_WRITER=thread``), the baseline of the default writer process."""
FLOOR_RPS = 3.0
"""trajops must serve at least this many times mlflow's requests/s at every point."""
FLOOR_P99 = 0.2
"""trajops's p99 latency must be at most this fraction of mlflow's at every point."""


@dataclass(frozen=True)
class BenchConfig:
    duration_s: int = 20
    warmup_s: int = 3
    concurrencies: tuple[int, ...] = (16, 64)
    workers: tuple[int, ...] = (1, 2)
    wrk_threads: int = 2


@dataclass
class Point:
    kind: str
    workers: int
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    """wrk's own split of ``errors``: non-2xx/3xx responses, socket connect/read/write errors
    and timeouts (a response later than wrk's 2 s timeout), the kinds that occurred."""
    connection_split: dict[str, int] = field(default_factory=dict)


# --- the echo baseline (uvicorn imports this module with app_dir bench) -----------------
def run_echo_server(port: int, workers: int) -> None:
    """Serve :func:`echo_app` under uvicorn's own httptools protocol, with the worker
    health-check timeout of ``trajops serve``."""
    import uvicorn

    from trajops.serving.server import WORKER_HEALTHCHECK_S

    uvicorn.run(
        "serve:echo_app",
        factory=True,
        app_dir=str(ROOT / "bench"),
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        http="httptools",
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def echo_app() -> Any:
    """A bare FastAPI app: parse the JSON body, return it."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- wrk -------------------------------------------------------------------------------
_LUA_HEAD = """
local counter = 0
local offset = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
-- every request of a run has its own positions: args[1] is the run's base. x stays below
-- 9990 m, so x + 3.5 m (the last of the 8 points) is inside the service's |coordinate| <= 1e4.
function init(args) offset = (tonumber(args[1]) or 0) + tid * 100000 end
local function next_x()
  counter = counter + 1
  return ((offset + counter) % 999000) * 0.01
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
"""

# One scene per request: AGENTS walkers side by side, 1.5 m apart in y, all at the request's
# own x. Agent 0 is "a" (the one-agent body of every earlier run), the others "a1", "a2", ...
_LUA_TRAJOPS = (
    _LUA_HEAD
    + """
function request()
  local x = next_x()
  local agents = {}
  for i = 0, AGENTS - 1 do
    local p = {}
    for t = 0, 7 do p[#p + 1] = string.format("[%.3f,%.3f]", x + 0.5 * t, 1.5 * i + 0.1 * t) end
    local id = i == 0 and "a" or ("a" .. i)
    agents[#agents + 1] = '{"agent_id":"' .. id .. '","positions":[' .. table.concat(p, ",") .. ']}'
  end
  local body = '{"agents":[' .. table.concat(agents, ",") .. ']}'
  return wrk.format(nil, PATH, nil, body)
end
"""
)

_LUA_MLFLOW = (
    _LUA_HEAD
    + """
local cols = '"scene_id","agent_id","x_0","x_1","x_2","x_3","x_4","x_5","x_6","x_7",' ..
             '"y_0","y_1","y_2","y_3","y_4","y_5","y_6","y_7"'
function request()
  local x = next_x()
  local rows = {}
  for i = 0, AGENTS - 1 do
    local xs, ys = {}, {}
    for t = 0, 7 do
      xs[#xs + 1] = string.format("%.3f", x + 0.5 * t)
      ys[#ys + 1] = string.format("%.3f", 1.5 * i + 0.1 * t)
    end
    local id = i == 0 and "a" or ("a" .. i)
    rows[#rows + 1] = '["bench","' .. id .. '",' .. table.concat(xs, ",") .. "," .. table.concat(ys, ",") .. "]"
  end
  local body = '{"dataframe_split":{"columns":[' .. cols .. '],"data":[' .. table.concat(rows, ",") .. ']}}'
  return wrk.format(nil, "/invocations", nil, body)
end
"""
)

_FIXED_BODY = json.dumps(
    {"agents": [{"agent_id": "a", "positions": [[0.5 * t, 0.1 * t] for t in range(8)]}]}
)
_LUA_FIXED = (
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    f"local body = [==[{_FIXED_BODY}]==]\n"
    'function request() return wrk.format(nil, "/v1/predict", nil, body) end\n'
)


def lua_for(kind: str, api_key: str = "", *, agents: int = 1) -> str:
    """The wrk script of a series: scenes of ``agents`` agents with unique positions (one fixed
    one-agent body for ``trajops_cached``). Every series sends the same ``X-API-Key`` header
    (only trajops checks it), so request sizes match."""
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents}")
    if kind == "echo":
        script = _LUA_TRAJOPS.replace("PATH", '"/echo"')
    elif kind in ("trajops", "trajops_thread"):
        script = _LUA_TRAJOPS.replace("PATH", '"/v1/predict"')
    elif kind == "trajops_cached":
        script = _LUA_FIXED
    else:
        script = _LUA_MLFLOW
    script = f"local AGENTS = {agents}\n" + script
    return script + (f'wrk.headers["X-API-Key"] = "{api_key}"\n' if api_key else "")


def ensure_wrk() -> str:
    """Path of ``wrk``, installing the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get install -y wrk)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and apt-get could not install it")
    return found


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNIT_MS[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, p50/p99 latency (ms), requests, errors and their kinds from ``wrk
    --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    kinds: dict[str, int] = {}
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        kinds["non_2xx_3xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        kinds.update(
            zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
        )
    kinds = {kind: n for kind, n in kinds.items() if n}
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "requests": total,
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
    }


_runs = itertools.count()


def run_wrk(
    wrk: str, url: str, script: Path, *, connections: int, seconds: int, threads: int
) -> dict[str, Any]:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s"]
    base = str(next(_runs) * 200_000 % 1_000_000)  # runs do not repeat each other's bodies
    done = subprocess.run(
        [*cmd, str(script), url, "--", base], capture_output=True, text=True, check=True
    )
    return parse_wrk(done.stdout)


def connection_split(port: int) -> dict[str, int]:
    """Established server-side connections on ``port`` per process id (via ``ss -tnp``)."""
    done = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    )
    return dict(Counter(re.findall(r"pid=(\d+)", done.stdout)))


# --- servers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_registry(root: Path) -> str:
    """A SQLite registry with one CV version as ``champion``; returns its URI."""
    import mlflow
    from mlflow import MlflowClient

    from trajops.models import ConstantVelocity
    from trajops.models.pyfunc import log_forecaster

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("bench", artifact_location=(root / "art").as_uri())
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=exp):
        log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(kind: str, *, workers: int, env: dict[str, str], logs: Path) -> Server:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    if kind == "echo":
        cmd = [
            sys.executable, str(ROOT / "bench" / "serve.py"), "--echo-server", str(port),
            "--workers", str(workers),
        ]  # fmt: skip
    elif kind in ("trajops", "trajops_thread"):
        cmd = [str(bin_dir / "trajops"), "serve", "--port", str(port), "--workers", str(workers)]
        env = {**env, "TRAJOPS_LOG_WRITER": "thread" if kind == "trajops_thread" else "process"}
        if kind == "trajops_thread":  # its own store: its backlog must not lock the other's
            env["TRAJOPS_HOME"] = str(Path(env["TRAJOPS_HOME"]).with_name("home-thread"))
    else:
        cmd = [
            str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}/1",
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers),
        ]  # fmt: skip
    log = (logs / f"{kind}-{workers}w.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(kind, port, proc)
    probe = {"echo": "/healthz", "mlflow": "/ping"}.get(kind, "/readyz")
    deadline = time.monotonic() + 180
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} server exited; see {log.name}")
        try:
            if httpx.get(server.url + probe, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{kind} server not ready in 180 s")


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()


# --- the run ---------------------------------------------------------------------------
def bench_env(tmp: Path, uri: str) -> dict[str, str]:
    """Environment of the servers: this one without ``TRAJOPS_*``, plus the bench's home and
    registry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJOPS_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TRAJOPS_HOME=str(tmp / "home"),
        TRAJOPS_TRACKING_URI=uri,
        MLFLOW_TRACKING_URI=uri,
        PYTHONUNBUFFERED="1",
        # The production path stays on (API key, scope, rate limiter, audit row and
        # prediction log per request); the limit is only raised above what wrk can send.
        TRAJOPS_RATE_LIMIT_PER_S="1000000000",
        TRAJOPS_RATE_LIMIT_BURST="1000000000",
    )
    return env


def create_api_key(env: dict[str, str]) -> str:
    """A ``predict`` key made with ``trajops keys create`` (auth is on, as in production)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trajops"), "keys", "create", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def wait_drained(server: Server, timeout_s: float = 120.0) -> None:
    """Wait until the server's log writers hold no rows (``/readyz`` reports ``unwritten``),
    so that one series' logging backlog does not run into the next series' measurement."""
    import httpx

    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 5:  # 5 probes in a row: every worker seen
        try:
            store = httpx.get(server.url + "/readyz", timeout=5).json()["checks"]["store"]
            quiet = quiet + 1 if store.get("unwritten", 0) == 0 else 0
        except (httpx.HTTPError, KeyError, ValueError):
            quiet = 0
        time.sleep(0.2)


def measure(
    wrk: str,
    server: Server,
    kind: str,
    *,
    workers: int,
    conns: int,
    cfg: BenchConfig,
    tmp: Path,
    api_key: str,
    agents: int = 1,
) -> Point:
    script = tmp / f"{kind}-{agents}.lua"
    script.write_text(lua_for(kind, api_key, agents=agents))
    url = server.url
    run_wrk(wrk, url, script, connections=conns, seconds=cfg.warmup_s, threads=cfg.wrk_threads)
    split: dict[str, int] = {}

    def sample() -> None:
        time.sleep(cfg.duration_s / 2)
        split.update(connection_split(server.port))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run_wrk(
        wrk, url, script, connections=conns, seconds=cfg.duration_s, threads=cfg.wrk_threads
    )
    sampler.join()
    if kind not in ("echo", "mlflow"):
        wait_drained(server)
    point = Point(kind=kind, workers=workers, connections=conns, connection_split=split, **result)  # type: ignore[arg-type]
    print(
        f"  {kind:15s} w={workers} c={conns:3d}  {point.rps:9.0f} req/s  p50 {point.p50_ms:7.2f} ms"
        f"  p99 {point.p99_ms:7.2f} ms  errors {_errors(point.errors, point.error_kinds)}  split {sorted(split.values())}",
        flush=True,
    )
    return point


def ratios(points: list[Point]) -> list[dict[str, Any]]:
    """Per point (workers, connections): the floor against mlflow, judged, and the
    informational ratios against the echo and the thread writer."""
    by = {(p.kind, p.workers, p.connections): p for p in points}
    out = []
    for w, c in sorted({(p.workers, p.connections) for p in points}):
        t, m = by[("trajops", w, c)], by[("mlflow", w, c)]
        row: dict[str, Any] = {
            "workers": w,
            "connections": c,
            "trajops_rps": round(t.rps),
            "mlflow_rps": round(m.rps),
            "trajops_p99_ms": t.p99_ms,
            "mlflow_p99_ms": m.p99_ms,
            "trajops_over_mlflow_rps": round(t.rps / m.rps, 2),
            "trajops_p99_over_mlflow_p99": round(t.p99_ms / m.p99_ms, 3),
        }
        row["meets_floor"] = (
            t.errors == 0 and t.rps >= FLOOR_RPS * m.rps and t.p99_ms <= FLOOR_P99 * m.p99_ms
        )
        if ("echo", w, c) in by:
            row["trajops_over_echo_rps"] = round(t.rps / by[("echo", w, c)].rps, 3)
        if ("trajops_thread", w, c) in by:
            row["process_over_thread_writer_rps"] = round(
                t.rps / by[("trajops_thread", w, c)].rps, 2
            )
        out.append(row)
    return out


def _errors(errors: int, kinds: dict[str, int]) -> str:
    """A point's error count, with wrk's kinds when there were any: ``64 (timeout 64)``."""
    detail = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in kinds.items())
    return f"{errors} ({detail})" if detail else str(errors)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Run: `{result['command']}` on {result['machine']['cpus']} CPUs "
        f"({result['machine']['cpu_model']}), {result['started_at']}, "
        f"{result['config']['duration_s']} s per point after {result['config']['warmup_s']} s "
        "warm-up, wrk with 2 threads on the same machine.",
        f"trajops path: {result['trajops_path']}.",
        "",
        "| workers | conns | server | req/s | p50 ms | p99 ms | errors | connections per worker |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for p in result["points"]:
        split = "/".join(str(v) for v in sorted(p["connection_split"].values(), reverse=True))
        lines.append(
            f"| {p['workers']} | {p['connections']} | {p['kind']} | {p['rps']:.0f} | "
            f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {_errors(p['errors'], p.get('error_kinds', {}))} | {split} |"
        )
    lines += [
        "",
        "Floor: trajops >= 3x mlflow's req/s and p99 <= 1/5 of mlflow's, no errors, at every "
        "point; trajops/echo and trajops/trajops_thread are informational.",
        "",
        "| workers | conns | trajops req/s | mlflow req/s | trajops/mlflow req/s (>= 3) "
        "| trajops p99 ms | mlflow p99 ms | trajops/mlflow p99 (<= 0.2) | floor met "
        "| trajops/echo req/s | trajops/trajops_thread req/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in result["ratios"]:
        lines.append(
            f"| {r['workers']} | {r['connections']} | {r['trajops_rps']} | {r['mlflow_rps']} | "
            f"{r['trajops_over_mlflow_rps']} | {r['trajops_p99_ms']:.2f} | "
            f"{r['mlflow_p99_ms']:.2f} | {r['trajops_p99_over_mlflow_p99']} | "
            f"{'yes' if r['meets_floor'] else '**no**'} | {r.get('trajops_over_echo_rps', '-')} | "
            f"{r.get('process_over_thread_writer_rps', '-')} |"
        )
    met = all(r["meets_floor"] for r in result["ratios"])
    lines += ["", f"Floor met at every point: {'yes' if met else '**no**'}."]
    return "\n".join(lines)


def update_doc(table: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{DOC_START}\n{DOC_END}\n"
    if DOC_START not in text:
        text += f"\n{DOC_START}\n{DOC_END}\n"
    head, rest = text.split(DOC_START, 1)
    tail = rest.split(DOC_END, 1)[1]
    DOC.write_text(f"{head}{DOC_START}\n{table}\n{DOC_END}{tail}")


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write a bench's ``result`` as ``bench/results/<name>`` (indented JSON); returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 s per point, 1 s warm-up; the floor check"
    )
    parser.add_argument("--duration", type=int, help="seconds per point")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:  # a server of the run (start_server), not the bench
        run_echo_server(args.echo_server, args.workers)
        return
    cfg = BenchConfig(duration_s=3, warmup_s=1) if args.quick else BenchConfig()
    if args.duration:
        cfg = BenchConfig(duration_s=args.duration, warmup_s=cfg.warmup_s)
    wrk = ensure_wrk()
    points: list[Point] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="trajops-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(tmp, build_registry(tmp))
        api_key = create_api_key(env)
        # trajops_thread gets a copy of the home (same key, own SQLite store and spool)
        shutil.copytree(
            Path(env["TRAJOPS_HOME"]), Path(env["TRAJOPS_HOME"]).with_name("home-thread")
        )
        for workers in cfg.workers:
            servers = {k: start_server(k, workers=workers, env=env, logs=tmp) for k in SERVERS}
            try:
                for conns in cfg.concurrencies:
                    for kind in KINDS:
                        server = servers["trajops" if kind == "trajops_cached" else kind]
                        points.append(
                            measure(
                                wrk,
                                server,
                                kind,
                                workers=workers,
                                conns=conns,
                                cfg=cfg,
                                tmp=tmp,
                                api_key=api_key,
                            )
                        )
            finally:
                for server in servers.values():
                    stop(server)
    command = "python bench/serve.py" + (" --quick" if args.quick else "")
    result = {
        "command": command,
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": sys.version},
        "config": asdict(cfg),
        "trajops_path": "auth on (X-API-Key, predict scope, in-process token bucket), "
        "validation, LRU cache, Prometheus metrics, one audit row and one prediction-log row "
        "per request handed to the log writer process (SQLite store under TRAJOPS_HOME); "
        "trajops_thread: the same with the writer as a thread of the API process; "
        "echo: bare FastAPI, uvicorn httptools",
        "points": [asdict(p) for p in points],
        "floor": {"trajops_over_mlflow_rps_min": FLOOR_RPS, "p99_ratio_max": FLOOR_P99},
        "ratios": ratios(points),
    }
    result["floor_met"] = all(r["meets_floor"] for r in result["ratios"])
    out = write_result("serve-quick.json" if args.quick else "serve.json", result)
    table = markdown(result)
    print(table)
    if not args.quick:
        update_doc(table)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if result["floor_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

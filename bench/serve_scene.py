"""Scene-scale serving of the neural forecaster: trajops micro-batching against BentoML, MLflow
and itself unbatched, same run.

Servers on loopback serve the same registered neural forecaster (default architecture):

* ``batched``    ``trajops serve`` with ``TRAJOPS_BATCHING=true`` (concurrent requests share
  forward passes, ``prediction.batching``), production path on (API key, audit row, durable
  prediction log);
* ``unbatched``  the same with batching off;
* ``bentoml``    BentoML 1.4 with adaptive batching (``bench/bentoml_scene_service.py``): the
  same version loaded by trajops' own loader, one scene per batch item, every batch through
  ``LoadedModel.predict_scenes`` (the call trajops' batcher makes); BentoML in production
  mode with its metrics on and its access log off (as ``trajops serve``'s uvicorn;
  ``--bentoml-access-log`` turns it on); no auth, no logging of predictions;
* ``mlflow``     ``mlflow models serve --env-manager local`` of the same version (the pyfunc).

``wrk`` drives each with unique bodies (no cache hits) at every (workers, agents,
connections) point: the trajops body ``{"agents": [...]}``, the same body in a one-item list
for BentoML (``[{"agents": [...]}]``), the same agents as a ``dataframe_split`` frame for
MLflow. Servers start once per worker count; rounds interleave the series (their order
rotates every round) so that the machine's drift hits all alike. Before measuring, the answers
of BentoML and MLflow to a 20-agent scene are checked against trajops' ``/v1/predict`` (to
1e-4 m), and 16 scenes of 1..20 agents sent to BentoML at once must each equal trajops' answer
(batched scenes must not mix); the run stops when they differ. Per point: median requests/s
and p99 over the rounds, and the ratios of ``batched`` over every other series. Writes
``bench/results/serve_scene.json`` (``--out`` elsewhere, e.g. for smoke runs).

BentoML is a bench-only dependency: ``.venv/bin/pip install -e '.[bench-bentoml]'``.

Usage::

    .venv/bin/python bench/serve_scene.py     # every series, 2 rounds, 10 s per point
    .venv/bin/python bench/serve_scene.py --series batched bentoml --agents 20 \\
        --connections 64 --workers 1 --rounds 1 --duration 5 --out /tmp/scene.json
    .venv/bin/python bench/serve_scene.py --check-only    # the answer checks, no measuring
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # servers, wrk and results, as the serving bench runs them

SERIES = ("batched", "unbatched", "bentoml", "mlflow")
BATCHING = {"batched": "true", "unbatched": "false"}
"""``TRAJOPS_BATCHING`` of the trajops series."""
BENTOML_PIN = "1.4"
INSTALL_BENTOML = ".venv/bin/pip install -e '.[bench-bentoml]'"
TOLERANCE_M = 1e-4
"""Largest difference between two servers' forecasts of one body in the answer checks."""
LOGS = Path(tempfile.gettempdir()) / "trajops-scene-logs"
"""Server logs (kept after the run), one folder per series."""


def build_neural_registry(root: Path, params: dict[str, Any] | None = None) -> str:
    """A SQLite registry with one neural version (default architecture, or ``params``'
    ``NeuralConfig`` overrides) as ``champion``."""
    import mlflow
    from mlflow import MlflowClient

    from trajops.data import WindowConfig, make_windows
    from trajops.data.simulator import SimulationConfig, simulate
    from trajops.models.neural import NeuralForecaster
    from trajops.models.pyfunc import log_forecaster

    tracks = simulate(SimulationConfig.pedestrians(n_agents=20, n_steps=60, n_scenes=3, seed=1))
    windows = make_windows(tracks, WindowConfig())
    model = NeuralForecaster(epochs=1, device="cpu", **(params or {}))
    model.fit(windows, windows)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("bench-scene", artifact_location=(root / "art").as_uri())
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=exp):
        log_forecaster(model, registered_model_name=serve.MODEL)
    client.set_registered_model_alias(serve.MODEL, "champion", "1")
    return uri


# --- BentoML ---------------------------------------------------------------------------
def bentoml_version() -> str:
    """The installed BentoML version; exits with the install command when it is missing."""
    if importlib.util.find_spec("bentoml") is None:
        raise SystemExit(
            "the bentoml series needs BentoML, a bench-only dependency; install it with\n"
            f"    {INSTALL_BENTOML}\n"
            "or leave bentoml out of --series"
        )
    version = importlib.metadata.version("bentoml")
    if not version.startswith(BENTOML_PIN + "."):
        print(f"warning: BentoML {version}, this bench is written for {BENTOML_PIN}.x", flush=True)
    return version


def lua_bentoml(api_key: str, *, agents: int) -> str:
    """The trajops series' wrk script (same agents, same unique positions, same headers) with
    each body wrapped in a one-item list: ``[{"agents": [...]}]``."""
    script = serve.lua_for("trajops", api_key, agents=agents)
    for old, new in (
        ("local body = '{\"agents\":['", "local body = '[{\"agents\":['"),
        ("table.concat(agents, \",\") .. ']}'", "table.concat(agents, \",\") .. ']}]'"),
    ):
        if script.count(old) != 1:
            raise RuntimeError(f"serve.lua_for changed: cannot find {old!r} once")
        script = script.replace(old, new)
    return script


def start_bentoml(
    *,
    workers: int,
    env: dict[str, str],
    logs: Path,
    max_batch_size: int,
    max_latency_ms: int,
    access_log: bool,
) -> serve.Server:
    """``bentoml serve`` of ``bench/bentoml_scene_service.py`` with ``workers`` workers."""
    import httpx

    port = serve.free_port()
    cmd = [
        str(Path(sys.executable).parent / "bentoml"), "serve",
        "bentoml_scene_service:SceneForecaster", "--working-dir", str(serve.ROOT / "bench"),
        "--host", "127.0.0.1", "--port", str(port), "--arg", f"workers={workers}",
        "--arg", f"model={serve.MODEL}", "--arg", "version=1",
        "--arg", f"max_batch_size={max_batch_size}", "--arg", f"max_latency_ms={max_latency_ms}",
        "--arg", f"access_log={str(access_log).lower()}",
    ]  # fmt: skip
    env = {**env, "BENTOML_DO_NOT_TRACK": "true"}
    env["BENTOML_HOME"] = str(Path(env["TRAJOPS_HOME"]).with_name("bentoml-home"))
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / f"bentoml-{workers}w.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = serve.Server("bentoml", port, proc)
    deadline = time.monotonic() + 180
    ready = 0
    while time.monotonic() < deadline and ready < 2 * workers:  # new connections: every worker
        if proc.poll() is not None:
            raise SystemExit(f"bentoml server exited; see {log.name}")
        try:
            ready = ready + 1 if httpx.get(server.url + "/readyz", timeout=2).is_success else 0
        except httpx.TransportError:
            ready = 0
        time.sleep(0.5)
    if ready < 2 * workers:
        serve.stop(server)
        raise SystemExit("bentoml server not ready in 180 s")
    return server


def bentoml_batch_size(server: serve.Server) -> float | None:
    """Mean scenes per batch since the server started (BentoML's ``adaptive_batch_size``
    histogram, every worker), or None when the metric is missing."""
    import httpx

    try:
        text = httpx.get(server.url + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    total = {"sum": 0.0, "count": 0.0}
    for part, value in re.findall(
        r"^\S*adaptive_batch_size_(sum|count)\{[^}]*\} (\S+)$", text, re.M
    ):
        total[part] += float(value)
    return round(total["sum"] / total["count"], 2) if total["count"] else None


def measure_script(
    wrk: str,
    server: serve.Server,
    name: str,
    script: str,
    *,
    workers: int,
    conns: int,
    cfg: serve.BenchConfig,
    tmp: Path,
    agents: int,
) -> serve.Point:
    """:func:`serve.measure` with a given wrk script (a series ``serve.lua_for`` lacks)."""
    path = tmp / f"{name}-{agents}.lua"
    path.write_text(script)
    threads = cfg.wrk_threads
    serve.run_wrk(wrk, server.url, path, connections=conns, seconds=cfg.warmup_s, threads=threads)
    split: dict[str, int] = {}

    def sample() -> None:
        time.sleep(cfg.duration_s / 2)
        split.update(serve.connection_split(server.port))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = serve.run_wrk(
        wrk, server.url, path, connections=conns, seconds=cfg.duration_s, threads=threads
    )
    sampler.join()
    point = serve.Point(
        kind=name, workers=workers, connections=conns, connection_split=split, **result
    )
    print(
        f"  {name:15s} w={workers} c={conns:3d}  {point.rps:9.0f} req/s  p50 {point.p50_ms:7.2f} ms"
        f"  p99 {point.p99_ms:7.2f} ms  errors {serve._errors(point.errors, point.error_kinds)}"
        f"  split {sorted(split.values())}",
        flush=True,
    )
    return point


# --- the answer checks -----------------------------------------------------------------
def scene_body(n: int, *, shift: float = 0.0) -> dict[str, Any]:
    """A ``/v1/predict`` body of ``n`` walkers fanning out (millimetre positions)."""
    from trajops.models.pyfunc import example_obs

    obs = np.round(example_obs(n) + np.array([shift, 0.0]), 3)  # (n, T_obs, 2)
    return {
        "agents": [
            {"agent_id": "a" if i == 0 else f"a{i}", "positions": obs[i].tolist()} for i in range(n)
        ]
    }


def _trajops_answer(client: Any, server: serve.Server, api_key: str, body: dict[str, Any]) -> Any:
    resp = client.post(server.url + "/v1/predict", json=body, headers={"X-API-Key": api_key})
    resp.raise_for_status()
    preds = resp.json()["predictions"]
    return [p["agent_id"] for p in preds], np.array([p["positions"] for p in preds])


def _bentoml_answer(client: Any, server: serve.Server, body: dict[str, Any]) -> Any:
    resp = client.post(server.url + "/v1/predict", json=[body])
    resp.raise_for_status()
    (scene,) = resp.json()
    preds = scene["predictions"]
    return [p["agent_id"] for p in preds], np.array([p["positions"] for p in preds])


def _mlflow_answer(client: Any, server: serve.Server, body: dict[str, Any]) -> Any:
    from trajops import T_PRED
    from trajops.models.pyfunc import INPUT_COLUMNS

    rows = []
    for agent in body["agents"]:
        obs = np.array(agent["positions"])  # (T_obs, 2)
        rows.append(["check", agent["agent_id"], *obs[:, 0].tolist(), *obs[:, 1].tolist()])
    frame = {"dataframe_split": {"columns": INPUT_COLUMNS, "data": rows}}
    resp = client.post(server.url + "/invocations", json=frame)
    resp.raise_for_status()
    preds = resp.json()["predictions"]
    xy = [[[p[f"x_{t}"], p[f"y_{t}"]] for t in range(T_PRED)] for p in preds]
    return [p["agent_id"] for p in preds], np.array(xy)


def _compare(what: str, ref: Any, got: Any) -> float:
    (ref_ids, ref_xy), (ids, xy) = ref, got
    if ids != ref_ids or xy.shape != ref_xy.shape:
        raise SystemExit(
            f"answer check failed, {what}: agents {ids} {xy.shape}, trajops {ref_ids} {ref_xy.shape}"
        )
    diff = float(np.abs(xy - ref_xy).max())
    if diff > TOLERANCE_M:
        raise SystemExit(f"answer check failed, {what}: differs from trajops by {diff:.2e} m")
    return diff


def check_answers(
    servers: dict[str, serve.Server], keys: dict[str, str], *, agents: int = 20
) -> dict[str, Any]:
    """Forecasts of the other series against trajops' ``/v1/predict`` for the same bodies;
    exits when one differs by more than :data:`TOLERANCE_M` (returns the largest differences).
    """
    import httpx

    ref_name = next((s for s in BATCHING if s in servers), None)
    if ref_name is None:
        print("  answer check skipped: no trajops series in this run", flush=True)
        return {"skipped": "no trajops series"}
    ref_server, key = servers[ref_name], keys[ref_name]
    body = scene_body(agents)
    checks: dict[str, Any] = {"reference": ref_name, "agents": agents, "tolerance_m": TOLERANCE_M}
    with httpx.Client(timeout=60) as client:
        ref = _trajops_answer(client, ref_server, key, body)
        for name, server in servers.items():
            if name == ref_name:
                continue
            if name in BATCHING:
                got = _trajops_answer(client, server, keys[name], body)
            elif name == "bentoml":
                got = _bentoml_answer(client, server, body)
            else:
                got = _mlflow_answer(client, server, body)
            checks[f"max_abs_diff_m_{name}"] = _compare(f"{name}, {agents} agents", ref, got)
        if "bentoml" in servers:  # bursts of concurrent scenes of 1..20 agents: never mixed
            bodies = [scene_body(1 + 7 * k % 20, shift=10.0 * k) for k in range(16)]
            refs = [_trajops_answer(client, ref_server, key, b) for b in bodies]

            def one(b: dict[str, Any]) -> Any:
                with httpx.Client(timeout=60) as own:
                    return _bentoml_answer(own, servers["bentoml"], b)

            worst = 0.0
            with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
                for _ in range(4):  # the first ones go one by one: BentoML trains its dispatcher
                    for k, got in enumerate(pool.map(one, bodies)):
                        diff = _compare(f"bentoml, concurrent scene {k}", refs[k], got)
                        worst = max(worst, diff)
            checks["max_abs_diff_m_bentoml_concurrent_scenes"] = worst
            checks["bentoml_mean_scenes_per_batch"] = bentoml_batch_size(servers["bentoml"])
    print(f"  answers match trajops ({ref_name}) to {TOLERANCE_M:g} m: {checks}", flush=True)
    return checks


# --- the run ---------------------------------------------------------------------------
def start_servers(
    names: list[str], *, workers: int, tmp: Path, uri: str, keys: dict[str, str], args: Any
) -> dict[str, serve.Server]:
    """Every series' server with ``workers`` workers (all stopped when one fails to start)."""
    servers: dict[str, serve.Server] = {}
    try:
        for name in names:
            env = serve.bench_env(tmp, uri)
            logs = LOGS / name
            if name in BATCHING:
                env["TRAJOPS_BATCHING"] = BATCHING[name]
                env["TRAJOPS_HOME"] = str(tmp / f"home-{name}")
                if name not in keys:
                    keys[name] = serve.create_api_key(env)
                logs.mkdir(parents=True, exist_ok=True)
                servers[name] = serve.start_server("trajops", workers=workers, env=env, logs=logs)
            elif name == "bentoml":
                servers[name] = start_bentoml(
                    workers=workers, env=env, logs=logs,
                    max_batch_size=args.bentoml_max_batch_size,
                    max_latency_ms=args.bentoml_max_latency_ms,
                    access_log=args.bentoml_access_log,
                )  # fmt: skip
            else:
                logs.mkdir(parents=True, exist_ok=True)
                servers[name] = serve.start_server("mlflow", workers=workers, env=env, logs=logs)
            print(f"  {name}: {workers} worker(s) on port {servers[name].port}", flush=True)
    except BaseException:
        for server in servers.values():
            serve.stop(server)
        raise
    return servers


def measure_series(
    wrk: str,
    name: str,
    server: serve.Server,
    *,
    workers: int,
    agents: int,
    conns: int,
    cfg: serve.BenchConfig,
    tmp: Path,
    keys: dict[str, str],
) -> serve.Point:
    # every series sends the same X-API-Key header (only trajops checks it): sizes match
    key = keys.get(name) or next(iter(keys.values()), "")
    print(f"  {name} ({agents} agents)", end="", flush=True)
    if name == "bentoml":
        script = lua_bentoml(key, agents=agents)
        return measure_script(
            wrk, server, name, script, workers=workers, conns=conns, cfg=cfg, tmp=tmp,
            agents=agents,
        )  # fmt: skip
    kind = "trajops" if name in BATCHING else "mlflow"
    return serve.measure(
        wrk, server, kind, workers=workers, conns=conns, cfg=cfg, tmp=tmp, api_key=key,
        agents=agents,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", choices=SERIES, default=list(SERIES))
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per point")
    parser.add_argument(
        "--out", type=Path, help="result file (default bench/results/serve_scene.json)"
    )
    parser.add_argument(
        "--check-only", action="store_true", help="start the servers, check answers, stop"
    )
    parser.add_argument("--bentoml-max-batch-size", type=int, default=100, help="scenes")
    parser.add_argument("--bentoml-max-latency-ms", type=int, default=10_000)
    parser.add_argument(
        "--bentoml-access-log",
        action="store_true",
        help="BentoML's per-request access log on (as shipped; off by default, as trajops')",
    )
    parser.add_argument(
        "--neural",
        type=json.loads,
        default={},
        help="NeuralConfig overrides of the served model, e.g. '{\"mirror_test\": false}'",
    )
    args = parser.parse_args(argv)
    names = [s for s in SERIES if s in args.series]  # canonical order, no repeats
    versions = {"bentoml": bentoml_version()} if "bentoml" in names else {}
    wrk = serve.ensure_wrk()
    cfg = serve.BenchConfig(
        duration_s=args.duration, warmup_s=args.warmup, wrk_threads=1, workers=tuple(args.workers)
    )
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows: dict[tuple[str, int, int, int], list[serve.Point]] = {}
    checks: dict[int, Any] = {}
    batch_sizes: dict[int, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="trajops-scene-") as tmp_name:
        tmp = Path(tmp_name)
        uri = build_neural_registry(tmp, args.neural)
        keys: dict[str, str] = {}
        if not any(s in BATCHING for s in names):  # a key for the same header in every body
            keys["header"] = serve.create_api_key(serve.bench_env(tmp, uri))
        for workers in args.workers:
            print(f"workers {workers}: starting {', '.join(names)} (logs in {LOGS})", flush=True)
            servers = start_servers(names, workers=workers, tmp=tmp, uri=uri, keys=keys, args=args)
            try:
                checks[workers] = check_answers(servers, keys)
                if args.check_only:
                    continue
                for round_no in range(args.rounds):
                    order = names[round_no % len(names) :] + names[: round_no % len(names)]
                    print(f"round {round_no + 1}/{args.rounds} ({workers} workers)", flush=True)
                    for agents in args.agents:
                        for conns in args.connections:
                            for name in order:
                                point = measure_series(
                                    wrk, name, servers[name], workers=workers, agents=agents,
                                    conns=conns, cfg=cfg, tmp=tmp, keys=keys,
                                )  # fmt: skip
                                rows.setdefault((name, workers, agents, conns), []).append(point)
                if "bentoml" in servers:
                    batch_sizes[workers] = bentoml_batch_size(servers["bentoml"])
            finally:
                for server in servers.values():
                    serve.stop(server)
    if args.check_only:
        print("answer checks passed")
        return
    table = summarise(rows, args, names)
    table.update(
        started=started,
        command="python bench/serve_scene.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        versions=versions,
        neural=args.neural,
        checks={str(w): c for w, c in checks.items()},
        bentoml={
            "max_batch_size_scenes": args.bentoml_max_batch_size,
            "max_latency_ms": args.bentoml_max_latency_ms,
            "access_log": args.bentoml_access_log,
            "mean_scenes_per_batch": {str(w): b for w, b in batch_sizes.items()},
        }
        if "bentoml" in names
        else None,
    )
    if args.out is None:
        out = serve.write_result("serve_scene.json", table)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(table, indent=2) + "\n")
        out = args.out
    print(json.dumps(table["ratios"], indent=1))
    print(f"wrote {out}")


def summarise(
    rows: dict[tuple[str, int, int, int], list[serve.Point]], args: Any, names: list[str]
) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    for (name, workers, agents, conns), measured in sorted(
        rows.items(), key=lambda kv: (SERIES.index(kv[0][0]), *kv[0][1:])
    ):
        points.append(
            {
                "series": name,
                "workers": workers,
                "agents": agents,
                "connections": conns,
                "rps_median": statistics.median(p.rps for p in measured),
                "p99_ms_median": statistics.median(p.p99_ms for p in measured),
                "errors": sum(p.errors for p in measured),
                "error_kinds": _sum_kinds(measured),
                "rounds": [round(p.rps, 1) for p in measured],
                "p99_ms_rounds": [p.p99_ms for p in measured],
            }
        )
    by = {(p["series"], p["workers"], p["agents"], p["connections"]): p for p in points}
    ratios = []
    if "batched" in names:
        for w in args.workers:
            for a in args.agents:
                for c in args.connections:
                    row: dict[str, Any] = {"workers": w, "agents": a, "connections": c}
                    mine = by[("batched", w, a, c)]
                    for other in names:
                        if other == "batched":
                            continue
                        theirs = by[(other, w, a, c)]
                        row[f"rps_batched_over_{other}"] = round(
                            mine["rps_median"] / theirs["rps_median"], 3
                        )
                        row[f"p99_batched_over_{other}"] = round(
                            mine["p99_ms_median"] / theirs["p99_ms_median"], 3
                        )
                    ratios.append(row)
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": serve.cpu_model(),
        "series": names,
        "workers": args.workers,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "points": points,
        "ratios": ratios,
    }


def _sum_kinds(points: list[serve.Point]) -> dict[str, int]:
    total: dict[str, int] = {}
    for p in points:
        for kind, n in p.error_kinds.items():
            total[kind] = total.get(kind, 0) + n
    return total


if __name__ == "__main__":
    main()

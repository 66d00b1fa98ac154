"""Scene-scale serving of the neural forecaster: micro-batching on against off, same run.

Two ``trajops serve`` processes on loopback serve the same registered neural forecaster
(default architecture) with the production path on (API key, audit row, durable prediction
log): one with ``TRAJOPS_BATCHING=true`` (concurrent requests share forward passes,
``prediction.batching``), one with it off. ``wrk`` drives each with unique bodies (no cache
hits) at every (agents, connections) point; rounds interleave the two servers so that the
machine's drift hits both alike. Per point: median requests/s and p99 over the rounds, and the
ratio on/off. Writes ``bench/results/serve_scene.json``.

BentoML is not part of this run (see ``docs/performance.md``).

Usage::

    .venv/bin/python bench/serve_scene.py                      # 2 rounds, 10 s per point
    .venv/bin/python bench/serve_scene.py --rounds 1 --duration 5 --agents 20 --connections 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # servers, wrk and results, as the serving bench runs them

SERIES = {"batched": "true", "unbatched": "false"}


def build_neural_registry(root: Path) -> str:
    """A SQLite registry with one neural version (default architecture) as ``champion``."""
    import mlflow
    from mlflow import MlflowClient

    from trajops.data import WindowConfig, make_windows
    from trajops.data.simulator import SimulationConfig, simulate
    from trajops.models.neural import NeuralForecaster
    from trajops.models.pyfunc import log_forecaster

    tracks = simulate(SimulationConfig.pedestrians(n_agents=20, n_steps=60, n_scenes=3, seed=1))
    windows = make_windows(tracks, WindowConfig())
    model = NeuralForecaster(epochs=1, device="cpu")
    model.fit(windows, windows)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("bench-scene", artifact_location=(root / "art").as_uri())
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=exp):
        log_forecaster(model, registered_model_name=serve.MODEL)
    client.set_registered_model_alias(serve.MODEL, "champion", "1")
    return uri


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    wrk = serve.ensure_wrk()
    cfg = serve.BenchConfig(
        duration_s=args.duration, warmup_s=args.warmup, wrk_threads=1, workers=(1,)
    )
    rows: dict[tuple[str, int, int], list[serve.Point]] = {}
    with tempfile.TemporaryDirectory(prefix="trajops-scene-") as tmp_name:
        tmp = Path(tmp_name)
        uri = build_neural_registry(tmp)
        servers = {}
        keys = {}
        try:
            for name, flag in SERIES.items():
                env = {**serve.bench_env(tmp, uri), "TRAJOPS_BATCHING": flag}
                env["TRAJOPS_HOME"] = str(tmp / f"home-{name}")
                keys[name] = serve.create_api_key(env)
                servers[name] = serve.start_server("trajops", workers=1, env=env, logs=tmp.parent)
            for round_no in range(args.rounds):
                print(f"round {round_no + 1}/{args.rounds}", flush=True)
                for agents in args.agents:
                    for conns in args.connections:
                        for name, server in servers.items():
                            print(f"  {name} ({agents} agents)", end="", flush=True)
                            point = serve.measure(
                                wrk, server, "trajops", workers=1, conns=conns, cfg=cfg,
                                tmp=tmp, api_key=keys[name], agents=agents,
                            )  # fmt: skip
                            rows.setdefault((name, agents, conns), []).append(point)
        finally:
            for server in servers.values():
                serve.stop(server)
    table = summarise(rows, args)
    out = serve.write_result("serve_scene.json", table)
    print(json.dumps(table["points"], indent=1))
    print(f"wrote {out}")


def summarise(rows: dict[tuple[str, int, int], list[serve.Point]], args: Any) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    for (name, agents, conns), measured in sorted(rows.items()):
        points.append(
            {
                "series": name,
                "agents": agents,
                "connections": conns,
                "rps_median": statistics.median(p.rps for p in measured),
                "p99_ms_median": statistics.median(p.p99_ms for p in measured),
                "errors": sum(p.errors for p in measured),
                "rounds": [round(p.rps, 1) for p in measured],
            }
        )
    by = {(p["series"], p["agents"], p["connections"]): p for p in points}
    ratios = [
        {
            "agents": a,
            "connections": c,
            "rps_batched_over_unbatched": round(
                by[("batched", a, c)]["rps_median"] / by[("unbatched", a, c)]["rps_median"], 3
            ),
            "p99_batched_over_unbatched": round(
                by[("batched", a, c)]["p99_ms_median"] / by[("unbatched", a, c)]["p99_ms_median"],
                3,
            ),
        }
        for a in args.agents
        for c in args.connections
    ]
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": serve.cpu_model(),
        "rounds": args.rounds,
        "duration_s": args.duration,
        "points": points,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main()

"""Batch benchmark: the Dask path of ``trajops batch predict`` vs one in-process vectorised call.

Data: straight walkers in scenes of ``--scene-agents`` agents, each seen on 8 frames (one
observation window per agent), written sorted by scene to Parquet in 100k-row row groups.
Model: a constant-velocity champion in a temporary SQLite MLflow registry.

* ``limit``: one process, one call of the same functions the Dask tasks run
  (``read_partition`` over the whole file -> ``predict_tracks`` -> one Parquet file), the model
  already in memory. This is the upper bound the issue compares against.
* ``dask``: ``run_batch`` on a local cluster of ``--workers`` processes, wall time of the whole
  job (cluster start, model load on each worker, planning, digest, manifest included).

Each measurement runs in its own subprocess, and a sampler thread records the peak RSS of that
process (the driver) and of each of its children (the Dask workers and nanny processes).
Results go to ``bench/results/batch.json``.

Usage::

    .venv/bin/python bench/batch.py                 # 1M agents vs limit, and 1M vs 4M memory
    .venv/bin/python bench/batch.py --agents 100000 --big-agents 400000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "batch.json"
MODEL = "trajectory-forecaster"
STEPS = 8
ROW_GROUP = 100_000


def make_input(path: Path, *, agents: int, scene_agents: int, seed: int = 0) -> Path:
    """Write ``agents`` straight walkers (8 frames each) to ``path``, sorted by scene."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    schema = pa.schema(
        [
            ("scene", pa.string()),
            ("frame", pa.int64()),
            ("agent_id", pa.string()),
            ("x", pa.float64()),
            ("y", pa.float64()),
        ]
    )
    t = np.arange(STEPS)  # (T,)
    chunk = max(scene_agents, (ROW_GROUP // STEPS) // scene_agents * scene_agents)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, agents, chunk):
            n = min(chunk, agents - lo)
            ids = np.arange(lo, lo + n)
            v = rng.uniform(-0.6, 0.6, (n, 2))  # (n, 2) metres per step
            p0 = rng.uniform(0, 50, (n, 2))  # (n, 2)
            pos = p0[:, None] + v[:, None] * t[None, :, None]  # (n, T, 2)
            scenes = np.char.add("s", (ids // scene_agents).astype(str)).astype(object)
            table = pa.table(
                {
                    "scene": np.repeat(np.char.zfill(scenes.astype(str), 9), STEPS),
                    "frame": np.tile(t * 10, n),
                    "agent_id": np.repeat((ids % scene_agents).astype(str), STEPS),
                    "x": pos[..., 0].ravel(),
                    "y": pos[..., 1].ravel(),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=ROW_GROUP)
    tmp.rename(path)
    return path


def build_registry(root: Path) -> str:
    import mlflow
    from mlflow import MlflowClient

    from trajops.models import ConstantVelocity
    from trajops.models.pyfunc import log_forecaster

    uri = f"sqlite:///{root / 'mlflow.db'}"
    if (root / "mlflow.db").exists():
        return uri
    client = MlflowClient(uri)
    exp = client.create_experiment("bench-batch", artifact_location=(root / "art").as_uri())
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=exp):
        log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri


class PeakRss:
    """Samples the RSS of this process and its descendants every ``interval_s``."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.driver = 0
        self.children: dict[int, int] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                total = rss = me.memory_info().rss
                self.driver = max(self.driver, rss)
                for child in me.children(recursive=True):
                    try:
                        c = child.memory_info().rss
                    except psutil.Error:
                        continue
                    self.children[child.pid] = max(self.children.get(child.pid, 0), c)
                    total += c
                self.total = max(self.total, total)
            except psutil.Error:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        mb = 1024 * 1024
        return {
            "driver_peak_mb": round(self.driver / mb, 1),
            "worker_peak_mb": round(max(self.children.values(), default=0) / mb, 1),
            "tree_peak_mb": round(self.total / mb, 1),
        }


def run_limit(data: Path, registry: str, out: Path) -> dict[str, Any]:
    """The in-process baseline: the same functions, one call over the whole input."""
    import mlflow

    from trajops.batch.plan import Partition
    from trajops.batch.predict import PredictConfig, predict_tracks
    from trajops.batch.rows import read_partition

    mlflow.set_tracking_uri(registry)
    forecaster = (
        mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").unwrap_python_model().forecaster
    )
    rows = pq.ParquetFile(data).metadata.num_rows
    groups = tuple(range(pq.ParquetFile(data).metadata.num_row_groups))
    part = Partition(
        index=0, path=str(data), kind="parquet", scene=data.stem, row_groups=groups, rows=rows
    )
    with PeakRss() as rss:
        t0 = time.perf_counter()
        read = read_partition(part)
        t1 = time.perf_counter()
        table, windows = predict_tracks(forecaster, read.tracks, config=PredictConfig(), seed=0)
        t2 = time.perf_counter()
        pq.write_table(table, out / "limit.parquet")
        t3 = time.perf_counter()
    return {
        "windows": windows,
        "seconds": round(t3 - t0, 3),
        "read_validate_s": round(t1 - t0, 3),
        "window_predict_s": round(t2 - t1, 3),
        "write_s": round(t3 - t2, 3),
        **rss.summary(),
    }


def run_dask(
    data: Path, registry: str, out: Path, *, workers: int, partition_rows: int
) -> dict[str, Any]:
    from trajops.batch import BatchRequest, run_batch
    from trajops.settings import Settings

    settings = Settings(home=out / "home", tracking_uri=registry)
    request = BatchRequest(
        input=data, output=out / "job", workers=workers, partition_rows=partition_rows
    )
    with PeakRss() as rss:
        t0 = time.perf_counter()
        result = run_batch(settings, request)
        seconds = time.perf_counter() - t0
    return {
        "windows": result.totals["windows"],
        "seconds": round(seconds, 3),
        "partitions": len(result.manifest["files"]),
        "partition_seconds_sum": round(sum(f["seconds"] for f in result.manifest["files"]), 3),
        **rss.summary(),
    }


def child(args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp(prefix="trajops-bench-batch-", dir=args.work))
    if args.child == "limit":
        res = run_limit(Path(args.data), args.registry, out)
    else:
        res = run_dask(
            Path(args.data),
            args.registry,
            out,
            workers=args.workers,
            partition_rows=args.partition_rows,
        )
    print("RESULT " + json.dumps(res), flush=True)


def measure(kind: str, data: Path, registry: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--data",
        str(data),
        "--registry",
        registry,
        "--work",
        str(args.work),
        "--workers",
        str(args.workers),
        "--partition-rows",
        str(args.partition_rows),
    ]
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{kind} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    res: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    print(f"{kind:>10} {data.name}: {json.dumps(res)}", flush=True)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--big-agents", type=int, default=4_000_000)
    parser.add_argument("--scene-agents", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "trajops-bench-batch"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=["limit", "dask"])
    parser.add_argument("--data")
    parser.add_argument("--registry")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    registry = build_registry(args.work)
    small = make_input(
        args.work / f"walkers-{args.agents}.parquet",
        agents=args.agents,
        scene_agents=args.scene_agents,
    )
    big = make_input(
        args.work / f"walkers-{args.big_agents}.parquet",
        agents=args.big_agents,
        scene_agents=args.scene_agents,
    )
    limit = measure("limit", small, registry, args)
    dask_small = measure("dask", small, registry, args)
    dask_big = measure("dask", big, registry, args)
    rate_limit = limit["windows"] / limit["seconds"]
    rate_dask = dask_small["windows"] / dask_small["seconds"]
    growth = {
        k: round(dask_big[k] / dask_small[k], 3)
        for k in ("driver_peak_mb", "worker_peak_mb", "tree_peak_mb")
    }
    result = {
        "command": "python bench/batch.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "config": {
            "agents": args.agents,
            "big_agents": args.big_agents,
            "scene_agents": args.scene_agents,
            "workers": args.workers,
            "partition_rows": args.partition_rows,
            "model": "cv",
        },
        "limit": limit,
        "dask": dask_small,
        "dask_big": dask_big,
        "throughput_agents_per_s": {"limit": round(rate_limit), "dask": round(rate_dask)},
        "dask_vs_limit": round(rate_dask / rate_limit, 3),
        "target_dask_vs_limit": 0.8,
        "memory_growth_big_vs_small": growth,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("throughput_agents_per_s", "dask_vs_limit", "memory_growth_big_vs_small")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

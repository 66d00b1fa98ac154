"""The production loop on a site the champion never saw: stream, harvest, retrain, gate, score.

One ETH/UCY site is treated as a new deployment (``eth`` or ``hotel``: recorded where no other
fold's files were). Per seed:

1. **Champion**: the neural forecaster trained on the fold's training and validation files
   (the other sites only), registered and promoted.
2. **Traffic**: the site's recording is cut in time; its first ``--stream-fraction`` is sent
   frame by frame to the real service (``POST /v1/tracks`` on uvicorn, durable log, SQLite
   store), which forecasts and scores its own forecasts as the agents walk on.
3. **The loop** (timed): ``harvest`` the store; train candidates on the harvest (split by
   time: the last part is held out) — the champion fine-tuned on it (``--init-from``), and a
   fresh model on the harvest plus the fold's base data; the promotion gate scores each
   candidate beside the champion on the held-out production windows and the best one (on
   those windows, never on the later traffic) is promoted.
4. **Later traffic**: the rest of the recording (never streamed, never seen) scores constant
   velocity, the unadapted champion and the adapted model.

Writes ``bench/results/flywheel.json`` (per seed and the means over seeds).

Usage::

    TRAJOPS_DATA_ROOT=../shared/data/eth_ucy .venv/bin/python bench/flywheel.py
    TRAJOPS_DATA_ROOT=... .venv/bin/python bench/flywheel.py --site hotel --seeds 0 1 2
    TRAJOPS_DATA_ROOT=... .venv/bin/python bench/flywheel.py --quick   # 1 seed, few epochs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def stream(url: str, tracks: Any) -> dict[str, int]:
    """Send the tracks frame by frame (in time order) to ``/v1/tracks``, as fast as the
    service answers, with frame times on the Unix clock as if recorded until a minute ago
    (the service logs them as when each input was observed: the loop keeps their timing)."""
    import httpx

    t0 = time.time() - 60.0 - 0.04 * float(tracks["frame"].max())
    counts = {"frames": 0, "forecasts": 0, "scored": 0}
    with httpx.Client(base_url=url, timeout=60) as http:
        for frame, part in tracks.groupby("frame", sort=True):
            body = {
                "scene_id": str(part["scene"].iloc[0]),
                "t": t0 + 0.04 * int(frame),  # frame ids step by 10 per 0.4 s
                "agents": [
                    {"agent_id": str(a), "position": [float(x), float(y)]}
                    for a, x, y in part[["agent_id", "x", "y"]].itertuples(index=False)
                ],
            }
            r = http.post("/v1/tracks", json=body)
            r.raise_for_status()
            out = r.json()
            counts["frames"] += 1
            counts["forecasts"] += len(out["predictions"])
            counts["scored"] += len(out["scored"])
    return counts


def wait_for_rows(settings: Any, n: int, timeout_s: float = 60.0) -> int:
    """Wait until the store holds ``n`` feedback rows (the durable log writes them)."""
    from sqlalchemy import func, select

    from trajops.store import Store
    from trajops.store.models import Feedback

    store = Store(settings.resolved_database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with store.session() as session:
                have = int(session.scalar(select(func.count()).select_from(Feedback)) or 0)
            if have >= n or time.monotonic() > deadline:
                return have
            time.sleep(0.2)
    finally:
        store.dispose()


def ade_on(uri: str | None, windows: Any, settings: Any) -> float:
    from trajops.models import ConstantVelocity
    from trajops.models.pyfunc import load_forecaster
    from trajops.registry.promotion import score

    model = (
        ConstantVelocity()
        if uri is None
        else load_forecaster(uri, tracking_uri=settings.resolved_tracking_uri)
    )
    return float(score(model, windows)[0])


def one_seed(
    root: Path, site: str, seed: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    import mlflow

    from trajops.data.readers import read_eth_ucy_split
    from trajops.data.windows import make_windows
    from trajops.errors import DataError
    from trajops.monitoring.harvest import HarvestFilter, harvest
    from trajops.monitoring.production_eval import gate_eval
    from trajops.registry.adapter import Registry
    from trajops.registry.promotion import PromotionRefused, promote
    from trajops.serving import AppOptions, create_app, serve_in_thread
    from trajops.settings import Settings
    from trajops.store import Store
    from trajops.tracking.datasets import eth_ucy_splits, harvest_splits
    from trajops.training.run import TrainSpec, train_run

    home = work / f"seed{seed}"
    settings = Settings(
        home=home,
        auth_enabled=False,
        rate_limit_burst=1_000_000,
        log_flush_interval_s=0.05,
        gate_min_production_windows=args.gate_min_windows,
        harvest_min_split_windows=args.min_split_windows,
        cache_size=0,
    )  # type: ignore[call-arg]
    settings.ensure_home()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    fold = eth_ucy_splits(root, site)
    epochs = args.epochs
    t = time.perf_counter()
    champ = train_run(
        settings, TrainSpec(model="neural", seed=seed, epochs=epochs, register=True), fold
    )
    champion_s = time.perf_counter() - t
    registry = Registry.from_settings(settings)
    promote(registry, version=champ.version or 1, tolerance=1.0, reason="bench champion")

    recording = read_eth_ucy_split(root, site, "test")  # the site's whole recording
    frames = recording["frame"].to_numpy()
    cut = np.quantile(frames, args.stream_fraction)  # the first part of the observations
    streamed, later = recording[frames <= cut], recording[frames > cut]
    later_windows = make_windows(later)

    app = create_app(settings, options=AppOptions(poll=False))
    t = time.perf_counter()
    with serve_in_thread(app) as url:
        counts = stream(url, streamed)
        counts["stored"] = wait_for_rows(settings, counts["scored"])
    stream_s = time.perf_counter() - t

    # --- the loop: harvest -> train -> gate ------------------------------------------
    loop_t = time.perf_counter()
    store = Store(settings.resolved_database_url)
    try:
        manifest = harvest(store, home / "harvest", HarvestFilter())
    finally:
        store.dispose()
    harvest_s = time.perf_counter() - loop_t
    candidates: dict[str, Any] = {}
    base = fold if not args.no_base else None
    plans = {
        "fine_tuned": (
            TrainSpec(model="neural", seed=seed, init_from="champion", register=True),
            None,
        ),
        "retrained": (TrainSpec(model="neural", seed=seed, epochs=epochs, register=True), base),
    }
    train_s: dict[str, float] = {}
    split_of: dict[str, dict[str, str]] = {}
    refused: dict[str, str] = {}
    for name, (spec, with_base) in plans.items():
        t = time.perf_counter()
        try:
            splits = harvest_splits(
                home / "harvest",
                seed=seed,
                base=with_base,
                min_windows=settings.harvest_min_split_windows,
            )
        except DataError as exc:  # too small to split: the loop trains nothing
            refused[name] = exc.message
            continue
        split_of[name] = {k: v for k, v in splits.lineage.items() if k.startswith("harvest.")}
        candidates[name] = train_run(settings, spec, splits)
        train_s[name] = time.perf_counter() - t
    t = time.perf_counter()
    gated: dict[str, dict[str, Any]] = {}
    held: dict[str, Any] = {}
    for name, result in candidates.items():
        held[name] = held_out = gate_eval(settings, registry, str(result.version))
        if held_out is None:
            gated[name] = {
                "version": result.version,
                "eval": "simulator (too few held-out windows)",
            }
            continue
        try:
            outcome = promote(
                registry,
                version=result.version or 0,
                alias="challenger",
                tolerance=settings.promotion_tolerance,
                held_out=lambda _v, found=held_out: (found.windows, found.source),
                reason="bench candidate",
            )
        except PromotionRefused as exc:
            gated[name] = {"version": result.version, "refused": exc.message}
            continue
        gated[name] = {
            "version": result.version,
            "eval": held_out.source,
            "held_out_windows": len(held_out.windows),
            "candidate_ade": outcome.candidate_ade,
            "champion_ade": outcome.champion_ade,
        }
    scored = {k: v for k, v in gated.items() if v.get("candidate_ade") is not None}
    best = min(scored, key=lambda k: scored[k]["candidate_ade"]) if scored else None
    chosen = best if best and scored[best]["candidate_ade"] < scored[best]["champion_ade"] else None
    if chosen is not None:
        promote(
            registry,
            version=gated[chosen]["version"],
            alias="champion",
            tolerance=settings.promotion_tolerance,
            held_out=lambda _v: (held[chosen].windows, held[chosen].source),
            reason="bench: best on held-out production windows",
        )
    gate_s = time.perf_counter() - t
    loop_s = time.perf_counter() - loop_t

    # --- later traffic ------------------------------------------------------------------
    champion_uri = f"models:/{settings.model_name}/{champ.version}"
    later_ade = {
        "cv": ade_on(None, later_windows, settings),
        "champion": ade_on(champion_uri, later_windows, settings),
    }
    for name in refused:
        later_ade[name] = float("nan")
    for name, result in candidates.items():
        later_ade[name] = ade_on(
            f"models:/{settings.model_name}/{result.version}", later_windows, settings
        )
    later_ade["adapted"] = later_ade[chosen] if chosen else later_ade["champion"]
    return {
        "seed": seed,
        "stream": counts,
        "stream_s": round(stream_s, 1),
        "champion_train_s": round(champion_s, 1),
        "harvest": {k: manifest[k] for k in ("windows", "instants", "agents", "rows")},
        "splits": split_of,
        "refused": refused,
        "later_windows": len(later_windows),
        "gate": gated,
        "chosen": chosen,
        "loop_s": {
            "harvest": round(harvest_s, 1),
            **{f"train_{k}": round(v, 1) for k, v in train_s.items()},
            "gate": round(gate_s, 1),
            "total": round(loop_s, 1),
        },
        "later_ade": later_ade,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="eth", choices=("eth", "hotel"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stream-fraction", type=float, default=0.6)
    parser.add_argument("--epochs", type=int, default=None, help="Epochs of the fresh models.")
    parser.add_argument("--gate-min-windows", type=int, default=20)
    parser.add_argument(
        "--min-split-windows",
        type=int,
        default=None,
        help="TRAJOPS_HARVEST_MIN_SPLIT_WINDOWS (default: 25 for eth, a small site; 50 else).",
    )
    parser.add_argument("--no-base", action="store_true", help="Retrain on the harvest alone.")
    parser.add_argument("--quick", action="store_true", help="One seed, 3 epochs.")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    from trajops.training.run import git_commit

    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], args.epochs or 3
    if args.min_split_windows is None:
        args.min_split_windows = 25 if args.site == "eth" else 50
    root = Path(os.environ.get("TRAJOPS_DATA_ROOT", "../shared/data/eth_ucy"))
    if not (root / args.site / "test").is_dir():
        sys.exit(f"no ETH/UCY data at {root} (set TRAJOPS_DATA_ROOT)")
    runs = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trajops-flywheel-") as tmp:
        for seed in args.seeds:
            run = one_seed(root, args.site, seed, args, Path(tmp))
            print(json.dumps(run["later_ade"]), run["loop_s"], file=sys.stderr)
            runs.append(run)
    keys = runs[0]["later_ade"].keys()
    table = {k: np.array([r["later_ade"][k] for r in runs], dtype=np.float64) for k in keys}
    mean = {k: float(np.nanmean(v)) if np.isfinite(v).any() else None for k, v in table.items()}
    spread = {
        k: float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0
        for k, v in table.items()
    }
    trained = {k: int(np.isfinite(v).sum()) for k, v in table.items()}  # seeds not refused
    summary = {
        "site": args.site,
        "seeds": args.seeds,
        "stream_fraction": args.stream_fraction,
        "later_ade_mean": mean,
        "later_ade_std": spread,
        "seeds_trained": trained,
        "adapted_vs_cv": mean["adapted"] / mean["cv"] - 1.0,
        "adapted_vs_champion": mean["adapted"] / mean["champion"] - 1.0,
        "goal_met": bool(
            mean["adapted"] <= 0.9 * mean["cv"] and mean["adapted"] < mean["champion"]
        ),
        "loop_s_mean": statistics.fmean(r["loop_s"]["total"] for r in runs),
        "wall_s": round(time.perf_counter() - started, 1),
        "runs": runs,
        "epochs": args.epochs,
        "commit": git_commit(),
        "base": not args.no_base,
    }
    out = args.output or RESULTS / f"flywheel-{args.site}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()

"""Drift detection benchmark: false alarms on same-distribution windows, detection of shifts.

Usage (from the repository root)::

    TRAJOPS_DATA_ROOT=/path/to/eth_ucy .venv/bin/python bench/drift.py [--windows 40]

Every monitored window holds ``--size`` (500) served inputs: whole requests (one scene at one
step, neighbours from the request) sampled from the stream, features as
:func:`trajops.monitoring.drift.served_features` computes them. The reference is the same
served view of the training data; thresholds come from :func:`calibrate` on it alone.

Scenarios
- simulator: reference = 6 pedestrian scenes (seed 0); null = other seeds, same config;
  shifts = speed x1.2, +N(0, 0.1 m) on every served position, 0.5 s steps served as 0.4 s,
  the faster population preset.
- ETH/UCY (each fold): reference = the fold's train split; null = windows of its val split
  with the train split's scene mix (val over-weights biwi_eth, a scene-mix shift reported on
  its own); shifts on val: the same paths walked 1.2x faster, +N(0, 0.1 m), 0.5 s steps
  served as 0.4 s (tracks re-sampled by linear interpolation).
- timing: one drift run on 5,000 inputs (features + Evidently report).
- skew: the null when the reference is the *training-window* profile instead.
- ``--per-scene`` (only this): each fold's test recordings served in time order; the
  reference is a recording's own first N inputs (``--scene-references``, calibrated as
  :func:`trajops.monitoring.scene_drift.run_scene_drift` does), windows are ``--size``
  consecutive later inputs, as served and 1.2x faster; the same windows are scored against
  the fold's train-split reference too. Writes ``bench/results/drift_scene.json``.

Writes ``bench/results/drift.json`` and prints a Markdown table for ``docs/monitoring.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trajops.data import FRAME_STEP, WindowConfig, make_windows, read_eth_ucy_split
from trajops.data.features import FEATURE_NAMES, kinematic_features
from trajops.data.simulator import SimulationConfig, simulate
from trajops.monitoring.drift import (
    DriftDetector,
    Persistence,
    calibrate,
    features_from_obs,
    sample_requests,
    served_features,
)
from trajops.monitoring.scene_drift import fit_scene_detector

RESULTS = Path(__file__).resolve().parent / "results"
FEATURES = list(FEATURE_NAMES)
SCENES = ("eth", "hotel", "univ", "zara1", "zara2")


def _commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- stream transformations ------------------------------------------------------------------
def add_noise(tracks: pd.DataFrame, sigma: float, seed: int) -> pd.DataFrame:
    """Every served position seen through ``sigma`` metres of extra Gaussian tracker noise."""
    rng = np.random.default_rng(seed)
    return tracks.assign(
        x=tracks["x"] + rng.normal(0.0, sigma, len(tracks)),
        y=tracks["y"] + rng.normal(0.0, sigma, len(tracks)),
    )


def resample(tracks: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Sample the same paths every ``factor`` x 0.4 s while frames still step by 10.

    Served as 0.4 s steps, agents then look ``factor`` times faster (1.25: a 0.5 s camera).
    Positions are linearly interpolated; grid points inside a track gap are dropped.
    """
    out = []
    start = tracks.groupby("scene")["frame"].min()
    for (scene, agent), g in tracks.groupby(["scene", "agent_id"], sort=False):
        f = g["frame"].to_numpy(np.float64)
        f0 = float(start[scene])
        grid = f0 + FRAME_STEP * factor * np.arange(
            np.ceil((f[0] - f0) / (FRAME_STEP * factor)),
            np.floor((f[-1] - f0) / (FRAME_STEP * factor)) + 1,
        )
        if len(grid) == 0:
            continue
        nxt = np.clip(np.searchsorted(f, grid), 1, len(f) - 1)
        ok = (f[nxt] - f[nxt - 1] <= FRAME_STEP) | np.isin(grid, f)
        grid = grid[ok]
        out.append(
            pd.DataFrame(
                {
                    "scene": scene,
                    "frame": np.round((grid - f0) / factor + f0).astype(np.int64),
                    "agent_id": agent,
                    "x": np.interp(grid, f, g["x"].to_numpy()),
                    "y": np.interp(grid, f, g["y"].to_numpy()),
                }
            )
        )
    return pd.concat(out, ignore_index=True).sort_values(["scene", "frame", "agent_id"])


# --- sampling and scoring --------------------------------------------------------------------
def mixed_sampler(pool: pd.DataFrame, size: int) -> Callable[[np.random.Generator], pd.DataFrame]:
    """Windows of whole requests drawn from the whole pool (its own scene mix)."""
    return lambda rng: sample_requests(pool, size=size, rng=rng)


def matched_sampler(
    pool: pd.DataFrame, reference: pd.DataFrame, size: int
) -> Callable[[np.random.Generator], pd.DataFrame]:
    """Windows with the reference's scene mix: per scene, its share of whole requests."""
    share = reference["scene"].value_counts(normalize=True)
    parts = {s: pool[pool["scene"] == s] for s in share.index if (pool["scene"] == s).any()}
    quota = {s: max(1, round(size * share[s] / share[list(parts)].sum())) for s in parts}
    return lambda rng: pd.concat(
        [sample_requests(parts[s], size=quota[s], rng=rng) for s in parts]
    ).head(size)


def score_scenario(
    detector: DriftDetector,
    draw: Callable[[np.random.Generator], pd.DataFrame],
    *,
    n_windows: int,
    seed: int,
    check_evidently: bool,
) -> dict[str, Any]:
    """Run ``n_windows`` windows; one of them also through the Evidently report (same verdict?)."""
    rng = np.random.default_rng(seed)
    windows = [draw(rng) for _ in range(n_windows)]
    results = [detector.run(w, report=False) for w in windows]
    flagged = np.array([[f in r.drifted_features for f in FEATURES] for r in results])
    row: dict[str, Any] = {
        "windows": n_windows,
        "window_rows": int(np.median([r.n_current for r in results])),
        "alarms": int(sum(r.dataset_drift for r in results)),
        "alarm_rate": float(np.mean([r.dataset_drift for r in results])),
        "feature_alarm_rate": dict(
            zip(FEATURES, flagged.mean(axis=0).round(3).tolist(), strict=True)
        ),
        "median_score": {
            f: float(np.median([r.scores.get(f, np.nan) for r in results])) for f in FEATURES
        },
    }
    if check_evidently:
        full = detector.run(windows[0])
        row["evidently_agrees"] = bool(
            full.drifted_features == results[0].drifted_features
            and all(
                abs(full.scores[f] - results[0].scores[f]) <= 1e-9 * max(1.0, abs(full.scores[f]))
                for f in results[0].scores
            )
        )
    return row


def _fit(
    reference: pd.DataFrame, args: argparse.Namespace, rule: tuple[int, float]
) -> tuple[DriftDetector, float]:
    t0 = time.perf_counter()
    cal = calibrate(
        reference[FEATURES],
        window_size=args.size,
        n_boot=args.n_boot,
        min_drifted=rule[0],
        alarm_rate=rule[1],
        groups=reference["scene"].to_numpy(),
        seed=args.seed,
    )
    return DriftDetector(reference, cal), time.perf_counter() - t0


def _scene_base(frame: pd.DataFrame) -> pd.DataFrame:
    """ETH/UCY file stems carry the split (``students001_val``): keep the recording name."""
    return frame.assign(scene=frame["scene"].str.replace(r"_(train|val|test)$", "", regex=True))


def _served(tracks: pd.DataFrame, *, step_s: float = 0.4) -> pd.DataFrame:
    return _scene_base(served_features(tracks, step_s=step_s))


def _training_profile(tracks: pd.DataFrame) -> pd.DataFrame:
    """The profile a training run logs: 20-step windows, neighbours from the whole scene."""
    w = make_windows(tracks)
    feats = kinematic_features(w.obs, neighbours=w.neighbours)
    return _scene_base(feats.assign(scene=w.scene.astype(object)))


# --- scenarios -------------------------------------------------------------------------------
Sampler = Callable[[np.random.Generator], pd.DataFrame]


def run_case(
    data: str,
    *,
    reference: pd.DataFrame,
    training_profile: pd.DataFrame,
    streams: dict[str, Sampler],
    args: argparse.Namespace,
    check_evidently: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any], DriftDetector]:
    """Calibrate on ``reference`` for each dataset rule and score every stream."""
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"n_reference": len(reference), "calibrations": {}}
    first: DriftDetector | None = None
    for rule in args.rules:
        detector, cal_s = _fit(reference, args, rule)
        first = first or detector
        name = f"{rule[0]}:{rule[1]}"
        meta["calibrations"][name] = {"seconds": cal_s, **detector.calibration.to_dict()}
        for i, (scenario, draw) in enumerate(streams.items()):
            row = score_scenario(
                detector,
                draw,
                n_windows=args.windows,
                seed=args.seed + i,
                check_evidently=check_evidently and rule == args.rules[0],
            )
            null = scenario.startswith("same")
            rows.append(
                {
                    "data": data,
                    "min_drifted": rule[0],
                    "target": rule[1],
                    "scenario": scenario,
                    "null": null,
                    **row,
                }
            )
            print(f"{data} {rule} | {scenario}: {row['alarms']}/{row['windows']}", flush=True)
    # Train/serve skew: the profile of training windows as the reference, served inputs as
    # the stream (same world): how often would that alarm?
    skew, _ = _fit(training_profile, args, args.rules[0])
    row = score_scenario(
        skew,
        next(iter(streams.values())),
        n_windows=args.windows,
        seed=args.seed,
        check_evidently=False,
    )
    rows.append(
        {
            "data": data,
            "min_drifted": args.rules[0][0],
            "target": args.rules[0][1],
            "scenario": "same distribution, reference = training-window profile (skew)",
            "null": True,
            "skew": True,
            **row,
        }
    )
    print(f"{data} | skew: {row['alarms']}/{row['windows']}", flush=True)
    if first is None:
        raise SystemExit("--rules is empty")
    return rows, meta, first


def simulator_case(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict, DriftDetector]:
    """Reference: 6 pedestrian scenes (seed 0); each stream a fresh simulation of 4 scenes."""
    ped = SimulationConfig.pedestrians
    train_tracks = simulate(ped(n_scenes=6, n_steps=250, seed=args.seed))
    small = {"n_scenes": 4, "n_steps": 200}
    pools = {
        "same distribution (seed 1)": _served(simulate(ped(seed=1, **small))),
        "same distribution (seed 11)": _served(simulate(ped(seed=11, **small))),
        "speed x1.2": _served(simulate(ped(speed_factor=1.2, seed=2, **small))),
        "position noise 0.1 m": _served(add_noise(simulate(ped(seed=3, **small)), 0.1, seed=3)),
        "time step 0.5 s served as 0.4 s": _served(
            simulate(SimulationConfig.time_step_shift(seed=4, **small)), step_s=0.4
        ),
        "faster population": _served(simulate(SimulationConfig.faster_population(seed=5, **small))),
    }
    return run_case(
        "simulator",
        reference=_served(train_tracks),
        training_profile=_training_profile(train_tracks),
        streams={name: mixed_sampler(pool, args.size) for name, pool in pools.items()},
        args=args,
        check_evidently=True,
    )


def eth_ucy_case(
    root: Path, fold: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict, DriftDetector]:
    """Reference: the fold's train split; streams from its val split."""
    train, val = read_eth_ucy_split(root, fold, "train"), read_eth_ucy_split(root, fold, "val")
    reference, val_served = _served(train), _served(val)

    def matched(pool: pd.DataFrame) -> Sampler:
        return matched_sampler(pool, reference, args.size)

    streams = {
        "same distribution (val, train scene mix)": matched(val_served),
        "scene-mix shift (val, its own scene mix)": mixed_sampler(val_served, args.size),
        "speed x1.2 (val re-sampled)": matched(_served(resample(val, 1.2))),
        "position noise 0.1 m": matched(_served(add_noise(val, 0.1, seed=args.seed))),
        "time step 0.5 s served as 0.4 s": matched(_served(resample(val, 1.25))),
    }
    return run_case(
        f"eth_ucy/{fold}",
        reference=reference,
        training_profile=_training_profile(train),
        streams=streams,
        args=args,
        check_evidently=fold == "eth",
    )


def timing(detector: DriftDetector, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds for one drift run on 5,000 served inputs: features, then the Evidently report."""
    tracks = simulate(SimulationConfig.pedestrians(n_scenes=2, n_steps=150, seed=21))
    windows = make_windows(tracks, WindowConfig(t_pred=0))
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(windows), 5000, replace=len(windows) < 5000)
    obs = windows.obs[rows]  # (5000, 8, 2)
    request = np.array(
        [f"{s}@{f}" for s, f in zip(windows.scene[rows], windows.start_frame[rows], strict=True)]
    )
    out: dict[str, list[float]] = {"features_s": [], "report_s": [], "direct_s": []}
    for _ in range(3):
        t0 = time.perf_counter()
        feats = features_from_obs(obs, scene_ids=request)
        t1 = time.perf_counter()
        detector.run(feats)
        t2 = time.perf_counter()
        detector.run(feats, report=False)
        t3 = time.perf_counter()
        out["features_s"].append(t1 - t0)
        out["report_s"].append(t2 - t1)
        out["direct_s"].append(t3 - t2)
    med = {k: float(np.median(v)) for k, v in out.items()}
    med["total_with_report_s"] = med["features_s"] + med["report_s"]
    med["n_inputs"] = 5000
    med["n_reference"] = len(detector.reference)
    return med


def scene_stream(tracks: pd.DataFrame) -> pd.DataFrame:
    """One recording's served inputs in serving order (step, then agent): request-level
    features plus ``agent`` and ``frame`` (the last observed one)."""
    w = make_windows(tracks, WindowConfig(t_pred=0))
    last = w.start_frame + (w.config.t_obs - 1) * w.config.frame_step
    order = np.lexsort((w.agent_id, last))
    request = np.array([f"{s}@{f}" for s, f in zip(w.scene[order], last[order], strict=True)])
    feats = features_from_obs(w.obs[order], scene_ids=request)
    return feats.assign(agent=w.agent_id[order], frame=last[order])


def _scene_row(verdicts: list[Any], persistence: Persistence, **fields: Any) -> dict[str, Any]:
    alerts = [persistence.update(v.dataset_drift) for v in verdicts]
    drifted = [f for v in verdicts for f in v.drifted_features]
    return {
        **fields,
        "windows": len(verdicts),
        "alarms": int(sum(v.dataset_drift for v in verdicts)),
        "alerts_2_of_3": int(sum(alerts)),
        "verdicts": "".join("1" if v.dataset_drift else "0" for v in verdicts),
        "feature_alarms": {f: drifted.count(f) for f in FEATURES if f in drifted},
    }


def _scene_cases(
    root: Path, fold: str, args: argparse.Namespace
) -> list[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """``(source, recording, own reference inputs, later tracks)`` of one fold.

    val: a val recording after its own train stretch (all of it: ``reference_until``);
    test: a test recording after its first N inputs, for each N of ``--scene-references``.
    """
    cases = []
    train = _scene_base(read_eth_ucy_split(root, fold, "train"))
    for scene, later in _scene_base(read_eth_ucy_split(root, fold, "val")).groupby("scene"):
        cases.append(("val", str(scene), scene_stream(train[train["scene"] == scene]), later))
    for scene, tracks in read_eth_ucy_split(root, fold, "test").groupby("scene"):
        stream = scene_stream(tracks)
        for n_ref in [n for n in args.scene_references if n + args.size <= len(stream)]:
            ref = stream.iloc[:n_ref]
            later = tracks[tracks["frame"] > ref["frame"].iloc[-1]]
            cases.append(("test", str(scene), ref, later))
    return cases


def scene_case(root: Path, fold: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each recording of ``fold`` against its own earlier inputs and the fold's train mix."""
    mixed, _ = _fit(_served(read_eth_ucy_split(root, fold, "train")), args, args.rules[0])
    rows: list[dict[str, Any]] = []
    for source, scene, ref, later in _scene_cases(root, fold, args):
        t0 = time.perf_counter()
        own = fit_scene_detector(
            ref, agents=ref["agent"].to_numpy(), window_size=args.size, seed=args.seed
        )
        fit_s = time.perf_counter() - t0
        for shift, served in (("none", later), ("speed x1.2", resample(later, 1.2))):
            s = scene_stream(served)
            if len(s) < args.size:
                print(f"{fold}/{scene} ({source}, {shift}): {len(s)} inputs, too few", flush=True)
                continue
            starts = np.linspace(0, len(s) - args.size, args.windows).astype(int)
            windows = [s.iloc[a : a + args.size] for a in starts]
            for name, det in (("own", own), ("mixed", mixed)):
                rows.append(
                    _scene_row(
                        [det.run(w, report=False) for w in windows],
                        Persistence(2, 3),
                        data=f"eth_ucy/{fold}",
                        source=source,
                        scene=scene,
                        own_reference=len(ref),
                        later_inputs=len(s),
                        shift=shift,
                        reference=name,
                        calibration_s=fit_s if name == "own" else None,
                    )
                )
                print(
                    f"{fold}/{scene} ({source}, ref {len(ref)}) {shift}, {name}: "
                    f"{rows[-1]['alarms']}/{args.windows}",
                    flush=True,
                )
    return rows


def scene_markdown(rows: list[dict[str, Any]]) -> str:
    """Windows flagged per recording and own reference: own / mixed reference."""
    table: dict[tuple[str, str, str, int], dict[str, str]] = {}
    for r in rows:
        key = (r["data"].split("/")[1], r["source"], r["scene"], r["own_reference"])
        cell = table.setdefault(key, {}).setdefault(r["shift"], "")
        table[key][r["shift"]] = f"{cell} / {r['alarms']}" if cell else str(r["alarms"])
    lines = [
        "| fold | stream | recording | own reference | as served: own / mixed "
        "| speed x1.2: own / mixed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (fold, source, scene, n_ref), cells in table.items():
        lines.append(
            f"| {fold} | {source} | {scene} | {n_ref} | {cells.get('none', '-')} "
            f"| {cells.get('speed x1.2', '-')} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| data | rule | scenario | windows flagged | rate | top features (share of windows) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        top = sorted(r["feature_alarm_rate"].items(), key=lambda kv: -kv[1])[:3]
        feats = ", ".join(f"{f} {v:.2f}" for f, v in top if v > 0) or "-"
        lines.append(
            f"| {r['data']} | >={r['min_drifted']} @ {r['target']} | {r['scenario']} | {r['alarms']}/{r['windows']} "
            f"| {r['alarm_rate']:.1%} | {feats} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=40, help="windows per scenario")
    parser.add_argument("--size", type=int, default=500, help="inputs per window")
    parser.add_argument("--n-boot", type=int, default=200, help="null windows for calibration")
    parser.add_argument(
        "--rules",
        default="2:0.05,1:0.01",
        help="dataset rules min_drifted:alarm_rate, comma separated (the first is the default)",
    )
    parser.add_argument("--folds", default=",".join(SCENES), help="ETH/UCY folds, comma separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-scene", action="store_true", help="per-scene references only")
    parser.add_argument(
        "--scene-references", default="2000", help="own reference sizes, comma separated"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.rules = [
        (int(k), float(a)) for k, a in (r.split(":") for r in str(args.rules).split(",") if r)
    ]
    args.scene_references = [int(n) for n in str(args.scene_references).split(",") if n]
    args.out = args.out or RESULTS / ("drift_scene.json" if args.per_scene else "drift.json")

    started = time.perf_counter()
    if args.per_scene:
        root = os.environ.get("TRAJOPS_DATA_ROOT")
        if not root or not Path(root).is_dir():
            raise SystemExit("--per-scene needs TRAJOPS_DATA_ROOT (the ETH/UCY folds)")
        rows = [
            r for fold in args.folds.split(",") if fold for r in scene_case(Path(root), fold, args)
        ]
        _write(args, {"rows": rows, "elapsed_s": time.perf_counter() - started}, per_scene=True)
        print(scene_markdown(rows))
        return
    rows, sim_meta, detector = simulator_case(args)
    meta: dict[str, Any] = {"simulator": sim_meta}
    root = os.environ.get("TRAJOPS_DATA_ROOT")
    if root and Path(root).is_dir():
        for fold in [f for f in args.folds.split(",") if f]:
            fold_rows, fold_meta, _ = eth_ucy_case(Path(root), fold, args)
            rows += fold_rows
            meta[f"eth_ucy/{fold}"] = fold_meta
    else:
        print("TRAJOPS_DATA_ROOT not set: ETH/UCY scenarios skipped")
    result = {
        "rows": rows,
        "meta": meta,
        "timing": timing(detector, args),
        "elapsed_s": time.perf_counter() - started,
    }
    _write(args, result, per_scene=False)
    print(markdown(rows))
    print(json.dumps(result["timing"], indent=2))


def _write(args: argparse.Namespace, result: dict[str, Any], *, per_scene: bool) -> None:
    """``result`` with the command, commit, machine and settings, to ``args.out``."""
    extra = f" --per-scene --scene-references {','.join(map(str, args.scene_references))}"
    head = {
        "command": "TRAJOPS_DATA_ROOT=... .venv/bin/python bench/drift.py "
        + f"--windows {args.windows} --size {args.size} --n-boot {args.n_boot} "
        + f"--rules {','.join(f'{k}:{a}' for k, a in args.rules)} --folds {args.folds}"
        + (extra if per_scene else ""),
        "commit": _commit(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**head, **result}, indent=2))


if __name__ == "__main__":
    main()

"""A/B statistics benchmark: sequential vs naive false-positive rate, power, detection time.

Usage (from the repository root)::

    [TRAJOPS_DATA_ROOT=/path/to/eth_ucy] .venv/bin/python bench/ab_simulation.py

Scenarios (every experiment looked at every 50 observations per arm, alpha = 0.05):

- A/A, 500 experiments, up to 2,000 observations per arm: how often the always-valid mSPRT
  and a naive Welch t-test repeated at each look declare a difference that does not exist.
- Power: 200 experiments with the challenger's mean ADE 5 %, 10 % and 20 % worse, up to
  5,000 observations per arm: share detected (in the right direction) and the median number
  of observations per arm at detection.
- Each on a log-normal ADE (mean 0.5 m, CV 0.6) and, when ``TRAJOPS_DATA_ROOT`` is set, on
  real per-agent ADE of the constant-velocity forecaster on the ETH/UCY test splits,
  resampled (the challenger's draws scaled by 1 + effect).
- mSPRT prior scale tau in {0.05, 0.1, 0.2} of the control's mean, for the A/A and 10 % cases.

Writes ``bench/results/ab.json`` and prints a Markdown table for ``docs/ab-testing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trajops.experiments.simulation import SimulationConfig, simulate

RESULTS = Path(__file__).parent / "results" / "ab.json"


def eth_ucy_ade(root: Path) -> np.ndarray:
    """``(M,)`` per-window ADE of constant velocity on every ETH/UCY test split."""
    from trajops.data import make_windows, read_eth_ucy_split
    from trajops.data.readers import list_folds
    from trajops.models import ConstantVelocity

    model = ConstantVelocity()
    out = []
    for fold in list_folds(root):
        windows = make_windows(read_eth_ucy_split(root, fold, "test"))
        pred = model.predict(windows.obs, neighbours=windows.neighbours)  # (N, T_pred, 2)
        out.append(np.linalg.norm(pred - windows.fut, axis=-1).mean(axis=-1))  # (N,)
    return np.concatenate(out)


def run(pool_name: str, pool: np.ndarray | None, seed: int) -> list[dict[str, Any]]:
    rows = []
    aa = SimulationConfig(n_experiments=500, n_max=2000, look_every=50, seed=seed)
    power = SimulationConfig(n_experiments=200, n_max=5000, look_every=50, seed=seed + 1)
    cases = [("A/A", aa, tau) for tau in (0.05, 0.1, 0.2)]
    cases += [("+10% ADE", replace(power, effect=0.10), tau) for tau in (0.05, 0.2)]
    cases += [(f"{e:+.0%} ADE", replace(power, effect=e), 0.1) for e in (0.05, 0.10, 0.20, -0.10)]
    for label, config, tau in cases:
        start = time.perf_counter()
        res = simulate(replace(config, tau=tau), pool=pool)
        rows.append(
            {
                "data": pool_name,
                "scenario": label,
                "tau": tau,
                **{k: v for k, v in res.to_dict().items() if k != "config"},
                "n_experiments": config.n_experiments,
                "n_max": config.n_max,
                "seconds": round(time.perf_counter() - start, 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    pools: list[tuple[str, np.ndarray | None]] = [("lognormal(0.5 m, cv 0.6)", None)]
    root = os.environ.get("TRAJOPS_DATA_ROOT")
    if root and Path(root).is_dir():
        ade = eth_ucy_ade(Path(root))
        pools.append((f"ETH/UCY CV ADE (n={len(ade)}, mean {ade.mean():.3f} m)", ade))
    rows = [row for name, pool in pools for row in run(name, pool, args.seed)]
    print("| data | scenario | tau | mSPRT rejects | naive t rejects | median n to detect |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        med = "-" if r["median_n_to_detect"] is None else f"{r['median_n_to_detect']:.0f}"
        print(
            f"| {r['data']} | {r['scenario']} | {r['tau']} | {r['msprt_rejection_rate']:.3f} | "
            f"{r['naive_t_rejection_rate']:.3f} | {med} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or "?"},
        "alpha": 0.05,
        "look_every": 50,
        "rows": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

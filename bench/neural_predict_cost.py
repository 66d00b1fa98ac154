"""What the neural model's design options cost on the request path, in the same run.

Times ``NeuralForecaster.predict`` on one scene of ``--agents`` agents (each with its nearest
neighbours, the API's per-request batch) for every variant (``NeuralConfig`` overrides, the
first one the reference) and ensemble size, at K = 1 and K = 20 samples, on one torch thread
(the API's ``inference_threads``). Weights are untrained: the arithmetic does not depend on
them. Rounds interleave the variants so a busy machine slows them alike; the median of each
variant's rounds is reported, and its ratio to the reference of the same size and K.

    .venv/bin/python bench/neural_predict_cost.py --agents 20 --rounds 5

Writes ``bench/results/neural_predict_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from trajops.data.windows import neighbours_from_batch
from trajops.models._neural_net import SocialNet
from trajops.models.neural import NeuralForecaster

RESULTS = Path(__file__).parent / "results"
VARIANTS = [
    {"mirror_test": False},
    {"mirror_test": True},
    {"mirror_test": False, "goal": True},
    {"mirror_test": False, "neighbours": 16},
    {"mirror_test": True, "neighbours": 16},
]


def model(params: dict[str, Any], ensemble: int) -> NeuralForecaster:
    m = NeuralForecaster(ensemble=ensemble, device="cpu", **params)
    m.nets = nn.ModuleList(SocialNet(m.config) for _ in range(ensemble)).eval()
    return m


def scene(agents: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Walkers of one scene and their neighbours as the API builds them for one request."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-5, 5, (agents, 1, 2))
    step = rng.normal(0, 0.4, (agents, 1, 2))
    obs = (start + step * np.arange(8)[None, :, None]).astype(np.float32)
    return obs, neighbours_from_batch(obs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="predict calls per timing")
    parser.add_argument("--variants", type=json.loads, default=VARIANTS)
    parser.add_argument("--out", type=Path, default=RESULTS / "neural_predict_cost.json")
    args = parser.parse_args()
    obs, nbr = scene(args.agents)
    points = [(i, ens, k) for i in range(len(args.variants)) for ens in (1, 3) for k in (1, 20)]
    models = {(i, ens): model(args.variants[i], ens) for i, ens, _ in points}
    times: dict[tuple[int, int, int], list[float]] = {p: [] for p in points}
    for _ in range(args.rounds):
        for i, ens, k in points:
            m = models[(i, ens)]
            m.predict(obs, neighbours=nbr, num_samples=k, seed=0)  # warm
            started = time.perf_counter()
            for _ in range(args.calls):
                m.predict(obs, neighbours=nbr, num_samples=k, seed=0)
            times[(i, ens, k)].append((time.perf_counter() - started) / args.calls * 1e3)
    rows = []
    for (i, ens, k), ms in times.items():
        row = {
            "variant": args.variants[i],
            "ensemble": ens,
            "samples": k,
            "ms_median": statistics.median(ms),
            "ms_rounds": ms,
            "ratio_to_reference": statistics.median(ms) / statistics.median(times[(0, ens, k)]),
        }
        rows.append(row)
        print(
            f"{json.dumps(row['variant']):<45} ensemble={ens} K={k:<2} "
            f"{row['ms_median']:.3f} ms  x{row['ratio_to_reference']:.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"agents": args.agents, "rounds": args.rounds, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()

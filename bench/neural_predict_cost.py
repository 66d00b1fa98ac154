"""What the neural model's design options cost on the request path, in the same run.

Times ``NeuralForecaster.predict`` on one scene of ``--agents`` agents (each with its nearest
neighbours, the API's per-request batch) for every combination of ``goal`` (endpoint-
conditioned decoding), ``mirror_test`` (test-time mirror augmentation) and ensemble size,
at K = 1 and K = 20 samples, on one torch thread (the API's ``inference_threads``). Weights
are untrained: the arithmetic does not depend on them. Rounds interleave the variants so a
busy machine slows them alike; the median of each variant's rounds is reported, and its
ratio to the default configuration.

    .venv/bin/python bench/neural_predict_cost.py --agents 20 --rounds 7

Writes ``bench/results/neural_predict_cost.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import numpy as np
from torch import nn

from trajops.models._neural_net import SocialNet
from trajops.models.neural import NeuralForecaster

RESULTS = Path(__file__).parent / "results"


def model(goal: bool, mirror_test: bool, ensemble: int) -> NeuralForecaster:
    m = NeuralForecaster(goal=goal, mirror_test=mirror_test, ensemble=ensemble, device="cpu")
    m.nets = nn.ModuleList(SocialNet(m.config) for _ in range(ensemble)).eval()
    return m


def scene(agents: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Walkers of one scene; each agent's neighbours are the other agents, nearest first."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-5, 5, (agents, 1, 2))
    step = rng.normal(0, 0.4, (agents, 1, 2))
    obs = start + step * np.arange(8)[None, :, None]
    d = np.linalg.norm(obs[:, None, -1] - obs[None, :, -1], axis=-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)[:, : agents - 1]
    return obs, obs[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200, help="predict calls per timing")
    parser.add_argument("--out", type=Path, default=RESULTS / "neural_predict_cost.json")
    args = parser.parse_args()
    obs, nbr = scene(args.agents)
    variants = {
        (goal, tta, ens, k): model(goal, tta, ens)
        for goal, tta, ens in itertools.product((False, True), (False, True), (1, 3))
        for k in (1, 20)
    }
    times: dict[tuple[bool, bool, int, int], list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for (goal, tta, ens, k), m in variants.items():
            m.predict(obs, neighbours=nbr, num_samples=k, seed=0)  # warm
            started = time.perf_counter()
            for _ in range(args.calls):
                m.predict(obs, neighbours=nbr, num_samples=k, seed=0)
            times[(goal, tta, ens, k)].append((time.perf_counter() - started) / args.calls * 1e3)
    rows = []
    for (goal, tta, ens, k), ms in times.items():
        base = statistics.median(times[(False, False, ens, k)])
        row = {
            "goal": goal,
            "mirror_test": tta,
            "ensemble": ens,
            "samples": k,
            "ms_median": statistics.median(ms),
            "ms_rounds": ms,
            "ratio_to_default": statistics.median(ms) / base,
        }
        rows.append(row)
        print(
            f"goal={goal!s:<5} mirror_test={tta!s:<5} ensemble={ens} K={k:<2} "
            f"{row['ms_median']:.3f} ms  x{row['ratio_to_default']:.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"agents": args.agents, "rounds": args.rounds, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()

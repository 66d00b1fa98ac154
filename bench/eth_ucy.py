"""ETH/UCY leave-one-scene-out benchmark: every model, every fold, both windowing protocols.

Usage (from the repository root)::

    TRAJOPS_DATA_ROOT=/path/to/eth_ucy .venv/bin/python bench/eth_ucy.py [--threads 2]

Writes ``bench/results/eth_ucy.json`` (default protocol) and ``bench/results/eth_ucy_sgan.json``
(Social-GAN windowing): rows per model and scene, fit/predict seconds, the commit, the machine
and every setting; prints the tables as Markdown for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from trajops.evaluation.protocol import evaluate_models
from trajops.models.neural import NeuralConfig

RESULTS = Path(__file__).resolve().parent / "results"


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


def markdown(rows: list[dict[str, Any]], timings: list[dict[str, Any]]) -> str:
    """One Markdown table: a line per model, a column per scene (ADE/FDE), minADE/FDE at K."""
    scenes = list(dict.fromkeys(r["scene"] for r in rows))
    sampled = any("min_ade" in r for r in rows)
    head = "| model | " + " | ".join(scenes) + (" | minADE/minFDE (avg) |" if sampled else " |")
    lines = [head, "|" + " --- |" * (len(scenes) + 1 + sampled)]
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["scene"]: r for r in rows if r["model"] == model}
        cells = [f"{by[s]['ade']:.3f} / {by[s]['fde']:.3f}" for s in scenes]
        if sampled:
            cells.append(f"{by['average']['min_ade']:.3f} / {by['average']['min_fde']:.3f}")
        fit = sum(t["fit_s"] for t in timings if t["model"] == model)
        lines.append(f"| {model} ({fit:.0f} s fit) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(
    root: Path, *, protocol: str, samples: int, neural: dict[str, Any], models: list[str]
) -> dict[str, Any]:
    """Evaluate ``models`` under ``protocol`` and return the JSON payload."""
    start = time.perf_counter()
    result = evaluate_models(
        root,
        models,
        protocol=protocol,
        num_samples=samples,  # type: ignore[arg-type]
        model_params={"neural": neural},
        on_progress=lambda m: print("  " + m, flush=True),
    )
    return {
        "benchmark": "eth_ucy",
        "protocol": protocol,
        "num_samples": samples,
        "command": "bench/eth_ucy.py " + " ".join(os.sys.argv[1:]),
        "commit": _commit(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "settings": {
            "models": models,
            "neural": {**vars(NeuralConfig(**neural))} if "neural" in models else None,
        },
        "seconds": time.perf_counter() - start,
        "results": result.rows,
        "timings": result.timings,
        "histories": {
            k: {kk: v for kk, v in h.items() if kk != "members"}
            for k, h in result.histories.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("TRAJOPS_DATA_ROOT"))
    parser.add_argument("--protocols", default="loso,sgan")
    parser.add_argument("--models", default="cv,linear,neural")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--neural",
        default='{"ensemble": 3}',
        help="JSON overrides of NeuralConfig (default: the benchmarked 3-member ensemble)",
    )
    args = parser.parse_args()
    if args.data is None:
        parser.error("pass --data or set TRAJOPS_DATA_ROOT")
    torch.set_num_threads(args.threads)
    neural = {"device": "cpu", **json.loads(args.neural)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    for protocol in args.protocols.split(","):
        print(f"== {protocol}", flush=True)
        payload = run(
            args.data,
            protocol=protocol,
            samples=args.samples,
            neural=neural,
            models=args.models.split(","),
        )
        name = "eth_ucy.json" if protocol == "loso" else f"eth_ucy_{protocol}.json"
        (RESULTS / name).write_text(json.dumps(payload, indent=2))
        print(markdown(payload["results"], payload["timings"]))
        print(
            f"{protocol}: {payload['seconds']:.0f} s with {args.threads} torch thread(s) -> {RESULTS / name}"
        )


if __name__ == "__main__":
    main()

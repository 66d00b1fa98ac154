"""How the neural ensemble's K > 1 samples are chosen, and how many members: on validation only.

For every leave-one-scene-out fold, trains one ensemble of ``--members`` members (seeds 0,
1, ...; cached under ``--cache``, so a second run only scores) and scores its first E members
for every E in ``--sizes``, with every sample selection of ``trajops.models._samples``
(``interleave``: the first hypotheses of every member, the code before this bench; ``first``:
the first member's modes; ``cluster`` / ``medoid``: k-means over all members' hypotheses), on
the fold's **validation** windows (the choice) and its test windows (for the record). A
single member has one selection (its own modes in order). The model cache keeps the weights
only: a second run scores with the code of that run.

    TRAJOPS_DATA_ROOT=/path/to/eth_ucy .venv/bin/python bench/ensemble_samples.py \
        --members 5 --sizes 1 3 5 --threads 2

``--neural '{"speed_jitter": 0.3}'`` trains with ``NeuralConfig`` overrides (cached apart);
``--score '{"mirror_test": true}'`` scores with prediction-time overrides (the cached weights).

Writes ``bench/results/ensemble_samples.json``: per fold, size and selection, ADE/FDE (K=1)
and minADE/minFDE (K=20) on val and test, and their means over the folds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from trajops.data.windows import WindowSet
from trajops.evaluation.metrics import ade, fde, min_ade_fde
from trajops.evaluation.protocol import SCENES, load_fold
from trajops.models.neural import NeuralConfig, NeuralForecaster

RESULTS = Path(__file__).parent / "results"
SELECTIONS = ("interleave", "first", "cluster", "medoid")


def members_of(
    model: NeuralForecaster, size: int, selection: str, score: dict[str, Any]
) -> NeuralForecaster:
    """The first ``size`` members of a fitted ensemble, as a model of their own (with the
    prediction-time overrides ``score``)."""
    assert model.nets is not None
    sub = NeuralForecaster(model.config, ensemble=size, samples=selection, **score)
    sub.nets = nn.ModuleList(list(model.nets)[:size])
    return sub


def scores(model: NeuralForecaster, windows: WindowSet, k: int) -> dict[str, float]:
    pred = model.predict(windows.obs, neighbours=windows.neighbours)
    samples = model.predict(windows.obs, neighbours=windows.neighbours, num_samples=k, seed=0)
    min_ade, min_fde = min_ade_fde(samples, windows.fut)
    return {
        "ade": ade(pred, windows.fut),
        "fde": fde(pred, windows.fut),
        "min_ade": min_ade,
        "min_fde": min_fde,
    }


def fitted(
    root: str, scene: str, members: int, cache: Path, threads: int, params: dict[str, Any]
) -> tuple[Any, NeuralForecaster]:
    fold = load_fold(root, scene)
    path = cache / scene
    if (path / "weights.pt").exists():
        return fold, NeuralForecaster.load(path)
    model = NeuralForecaster(NeuralConfig(ensemble=members, num_threads=threads, **params))
    started = time.perf_counter()
    model.fit(fold.train, fold.val)
    print(f"{scene}: {members} members in {time.perf_counter() - started:.0f} s", flush=True)
    model.save(path)
    return fold, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAJOPS_DATA_ROOT"))
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--neural",
        type=json.loads,
        default={},
        help="NeuralConfig overrides, e.g. '{\"speed_jitter\": 0.3}'",
    )
    parser.add_argument(
        "--score",
        type=json.loads,
        default={},
        help="prediction-time NeuralConfig overrides, e.g. '{\"mirror_test\": true}'",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/trajops-ensemble-samples"))
    parser.add_argument("--out", type=Path, default=RESULTS / "ensemble_samples.json")
    args = parser.parse_args()
    if not args.data or not Path(args.data).is_dir():
        sys.exit("set --data or TRAJOPS_DATA_ROOT to the ETH/UCY root")
    if max(args.sizes) > args.members:
        sys.exit(f"--sizes go up to {max(args.sizes)} but --members is {args.members}")
    rows = []
    for scene in SCENES:
        name = f"m{args.members}" + "".join(f"-{k}={v}" for k, v in sorted(args.neural.items()))
        fold, model = fitted(
            args.data, scene, args.members, args.cache / name, args.threads, args.neural
        )
        for size in args.sizes:
            for selection in SELECTIONS if size > 1 else SELECTIONS[:1]:
                sub = members_of(model, size, selection, args.score)
                for split in ("val", "test"):
                    row = {"scene": scene, "members": size, "selection": selection, "split": split}
                    rows.append({**row, **scores(sub, getattr(fold, split), args.samples)})
                    print(json.dumps(rows[-1]), flush=True)
    means = []
    for size in args.sizes:
        for selection in SELECTIONS if size > 1 else SELECTIONS[:1]:
            for split in ("val", "test"):
                of = [
                    r
                    for r in rows
                    if (r["members"], r["selection"], r["split"]) == (size, selection, split)
                ]
                metrics = {
                    k: float(np.mean([r[k] for r in of]))
                    for k in ("ade", "fde", "min_ade", "min_fde")
                }
                means.append({"members": size, "selection": selection, "split": split, **metrics})
    for m in means:
        print(
            f"{m['members']} {m['selection']:<10} {m['split']:<4} ADE/FDE {m['ade']:.4f}/{m['fde']:.4f}"
            f"  minADE/minFDE@{args.samples} {m['min_ade']:.4f}/{m['min_fde']:.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "members": args.members,
                "samples": args.samples,
                "neural": args.neural,
                "score": args.score,
                "rows": rows,
                "means": means,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

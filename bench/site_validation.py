"""Design choices of the neural model scored across sites, nested in every fold.

The benchmark's validation files are the training recordings' ``val`` splits: the same sites
the model trains on. A design that fits those sites better can transfer worse to a site it
never saw, which is what the leave-one-scene-out test measures. This bench scores a design
on sites it did not train on, using the fold's training data only:

for every outer fold (the held-out test scene), every physical site among its training
recordings (eth, hotel, univ = students + uni_examples, zara = crowds_zara*) is left out in
turn: a model trains on the other sites' ``train`` files (early stopping on their ``val``
files) and is scored on all windows (``train`` and ``val``) of the site left out. The fold's
score is the unweighted mean over its inner sites. Nothing of the outer test recording is
read; a choice made on these scores is nested per fold.

    TRAJOPS_DATA_ROOT=/path/to/eth_ucy .venv/bin/python bench/site_validation.py \\
        --neural '{"goal": true}' --score '{}' '{"mirror_test": true}'

``--neural``: ``NeuralConfig`` overrides for training (models cached under ``--cache`` by
them); ``--score``: prediction-time overrides, each scored on the same weights. Writes
``bench/results/site_validation-<name>.json`` (``default``, or the overrides, e.g.
``goal=True``): per fold, inner site and score variant ADE / FDE (K = 1) and minADE / minFDE
(K = 20); per fold and overall means.
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

from ensemble_samples import scores  # bench/, on the path when run as a script
from trajops.data.windows import WindowSet
from trajops.evaluation.protocol import SCENES, load_fold
from trajops.models.neural import NeuralConfig, NeuralForecaster

RESULTS = Path(__file__).parent / "results"
SITES = {
    "biwi_eth": "eth",
    "biwi_hotel": "hotel",
    "crowds_zara": "zara",
    "students": "univ",
    "uni_examples": "univ",
}


def sites_of(windows: WindowSet) -> np.ndarray:
    """The physical site of every window, from its recording's name."""
    names = np.asarray(windows.scene).astype(str)
    out = np.full(len(names), "", dtype=object)
    for prefix, site in SITES.items():
        out[np.char.startswith(names, prefix)] = site
    if (out == "").any():
        sys.exit(f"recordings of no known site: {sorted(set(names[out == '']))}")
    return out


def fitted(
    train: WindowSet, val: WindowSet, path: Path, threads: int, params: dict[str, Any]
) -> NeuralForecaster:
    if (path / "weights.pt").exists():
        return NeuralForecaster.load(path)
    model = NeuralForecaster(NeuralConfig(num_threads=threads, **params))
    started = time.perf_counter()
    model.fit(train, val)
    print(f"{path.parent.name}/{path.name}: {time.perf_counter() - started:.0f} s", flush=True)
    model.save(path)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAJOPS_DATA_ROOT"))
    parser.add_argument("--neural", type=json.loads, default={})
    parser.add_argument("--score", type=json.loads, nargs="+", default=[{}])
    parser.add_argument("--scenes", nargs="+", default=list(SCENES))
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/trajops-site-validation"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.data or not Path(args.data).is_dir():
        sys.exit("set --data or TRAJOPS_DATA_ROOT to the ETH/UCY root")
    name = "-".join(f"{k}={v}" for k, v in sorted(args.neural.items())) or "default"
    rows: list[dict[str, Any]] = []
    for scene in args.scenes:
        fold = load_fold(args.data, scene)
        train_site, val_site = sites_of(fold.train), sites_of(fold.val)
        for site in sorted(set(train_site)):
            model = fitted(
                fold.train.subset(train_site != site),
                fold.val.subset(val_site != site),
                args.cache / name / scene / site,
                args.threads,
                args.neural,
            )
            left_out = WindowSet.concat(
                [fold.train.subset(train_site == site), fold.val.subset(val_site == site)]
            )
            for score in args.score:
                scored = NeuralForecaster(model.config, **score)
                scored.nets = model.nets
                row = {"fold": scene, "site": site, "score": score}
                rows.append({**row, "n": len(left_out), **scores(scored, left_out, args.samples)})
                print(json.dumps(rows[-1]), flush=True)
    means = []
    keys = ("ade", "fde", "min_ade", "min_fde")
    for score in args.score:
        mine = [r for r in rows if r["score"] == score]
        folds = {
            scene: {k: float(np.mean([r[k] for r in mine if r["fold"] == scene])) for k in keys}
            for scene in args.scenes
        }
        overall = {k: float(np.mean([f[k] for f in folds.values()])) for k in keys}
        means.append({"score": score, "folds": folds, "mean": overall})
        print(
            f"{name} {json.dumps(score)}: "
            + "  ".join(f"{s} {f['ade']:.4f}" for s, f in folds.items())
            + f"  | mean ADE/FDE {overall['ade']:.4f}/{overall['fde']:.4f}"
            f"  minADE/minFDE@{args.samples} {overall['min_ade']:.4f}/{overall['min_fde']:.4f}"
        )
    out = args.out or RESULTS / f"site_validation-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"neural": args.neural, "samples": args.samples, "rows": rows, "means": means},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

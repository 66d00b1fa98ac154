"""The tables of docs/benchmarks.md from a multi-seed ``trajops evaluate --json`` result.

    .venv/bin/python bench/seed_tables.py bench/results/eth_ucy_seeds.json

Prints, in Markdown: ADE / FDE (K = 1) per scene and on average as mean ± sample standard
deviation over the seeds, minADE / minFDE at K; the cross-site behaviour (the sites no other
fold trains on, eth and hotel, and the average) as the ratio of each model's ADE / FDE to
constant velocity's; and the last seed's fit seconds per fold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CROSS_SITE = ("eth", "hotel", "average")


def pm(cell: dict[str, Any]) -> str:
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: seed_tables.py RESULT.json (trajops evaluate --seeds ... --output)")
    doc = json.loads(Path(sys.argv[1]).read_text())
    if "summary" not in doc:
        sys.exit(f"{sys.argv[1]}: no 'summary' (run trajops evaluate with --seeds a,b,c)")
    rows = doc["summary"]
    scenes = list(dict.fromkeys(r["scene"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cell = {(r["model"], r["scene"]): r for r in rows}
    k = doc["num_samples"]
    print(f"Seeds {', '.join(map(str, doc['seeds']))}; ADE / FDE in metres, mean ± std.\n")
    print("| model | " + " | ".join(scenes) + f" | K={k} min (avg) |")
    print("| --- |" + " --- |" * (len(scenes) + 1))
    for m in models:
        cells = [f"{pm(cell[m, s]['ade'])} / {pm(cell[m, s]['fde'])}" for s in scenes]
        avg = cell[m, "average"]
        tail = f"{pm(avg['min_ade'])} / {pm(avg['min_fde'])}" if "min_ade" in avg else "—"
        print(f"| {m} | " + " | ".join(cells) + f" | {tail} |")
    print("\nCross-site: ADE / FDE as a ratio to constant velocity (mean over seeds).\n")
    print("| model | " + " | ".join(CROSS_SITE) + " |")
    print("| --- |" + " --- |" * len(CROSS_SITE))
    for m in models:
        ratios = [
            f"{cell[m, s]['ade']['mean'] / cell['cv', s]['ade']['mean']:.2f} / "
            f"{cell[m, s]['fde']['mean'] / cell['cv', s]['fde']['mean']:.2f}"
            for s in CROSS_SITE
        ]
        print(f"| {m} | " + " | ".join(ratios) + " |")
    print("\nFit seconds per fold (the last seed):\n")
    fit: dict[str, dict[str, float]] = {}
    for t in doc["timings"]:
        fit.setdefault(t["model"], {})[t["scene"]] = t["fit_s"]
    print("| model | " + " | ".join(s for s in scenes if s != "average") + " | total |")
    print("| --- |" + " ---: |" * len(scenes))
    for m, by_scene in fit.items():
        print(
            f"| {m} | "
            + " | ".join(f"{v:.0f}" for v in by_scene.values())
            + f" | {sum(by_scene.values()):.0f} |"
        )


if __name__ == "__main__":
    main()

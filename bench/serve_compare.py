"""Same-run comparison of ``/v1/predict`` requests/s: this checkout against an earlier commit.

The decision rule for a hand-written speed-up (STYLE.md, item 12): keep it only where an
interleaved same-run comparison shows that removing it costs >= 5 % requests/s on the 1-agent
or the 20-agent scene workload. Single runs of ``bench/serve.py`` on this shared machine move
by more than that, so this bench interleaves, in every round and at every worker count: the
bare echo (informational: how fast the machine is in that round), trajops at ``--baseline``
(a ``git worktree`` of that commit, imported through ``PYTHONPATH``, with its own store) and
trajops of this checkout. Each server is started with the ``trajops serve`` console script
(``trajops.cli.main:main``, present in every layout), so the baseline may be a commit from
before the redesign. Every request body is unique (no cache hits): scenes of ``--agents``
agents, with ``bench/serve.py``'s ``wrk`` scripts. Per point (agents, workers, connections)
it reports the median requests/s of each server over the rounds, the ratios of the medians,
and whether the current code is >= 5 % slower than the baseline. ``--env`` adds variables to
the current code's servers only (e.g. ``TRAJOPS_LOG_GATHER_S=0.05`` to measure a setting
against the baseline code). Writes ``bench/results/serve_compare.json``.

Usage::

    .venv/bin/python bench/serve_compare.py --baseline d7be39b --agents 1 20   # ~12 minutes
    .venv/bin/python bench/serve_compare.py --baseline HEAD --env TRAJOPS_LOG_HANDOVER_S=0.02
    .venv/bin/python bench/serve_compare.py --baseline e3d612a --model neural --agents 20 \
        --workers 1 --connections 64 --out serve_compare-neural.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # servers, wrk and results, as the serving bench runs them

ROOT = serve.ROOT


@contextlib.contextmanager
def worktree(commit: str, folder: Path) -> Iterator[str]:
    """``commit`` checked out into ``folder`` (detached) while the block runs, removed after;
    yields its full hash. Its code is imported through ``PYTHONPATH=<folder>/src``."""
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if full.returncode != 0:
        raise SystemExit(f"--baseline {commit!r} is not a commit of this repository")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), full.stdout.strip()],
        check=True,
        capture_output=True,
    )
    try:
        yield full.stdout.strip()
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
            check=False,
            capture_output=True,
        )


def side_envs(
    tmp: Path, names: Sequence[str], baseline_tree: Path, *, model: str = "cv"
) -> dict[str, dict[str, str]]:
    """The servers' environments over one registry, each with a store (``TRAJOPS_HOME``) of its
    own; ``baseline`` imports the code checked out at ``baseline_tree`` (:func:`worktree`).
    ``model``: the registered champion, constant velocity or the neural forecaster."""
    if model == "neural":
        import serve_scene

        uri = serve_scene.build_neural_registry(tmp)
    else:
        uri = serve.build_registry(tmp)
    envs = {
        name: {**serve.bench_env(tmp, uri), "TRAJOPS_HOME": str(tmp / f"home-{name}")}
        for name in names
    }
    if "baseline" in envs:
        envs["baseline"]["PYTHONPATH"] = str(baseline_tree / "src")
    return envs


THRESHOLD = 0.95
"""current/baseline at or below this: the current code is >= 5 % slower on that point."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--connections", type=int, nargs="+", default=[16])
    parser.add_argument(
        "--agents",
        type=int,
        nargs="+",
        default=[1],
        help="agents per request (scene workloads; e.g. --agents 1 20 for both)",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    parser.add_argument(
        "--out", default="serve_compare.json", help="file name under bench/results/"
    )
    parser.add_argument(
        "--model",
        choices=("cv", "neural"),
        default="cv",
        help="the served champion: constant velocity, or the neural forecaster (scene workloads)",
    )
    parser.add_argument(
        "--env", nargs="*", default=[], metavar="NAME=VALUE", help="for the current code only"
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(extra) != len(args.env):
        raise SystemExit("--env takes NAME=VALUE pairs")
    if min(args.agents) < 1:
        raise SystemExit("--agents takes counts >= 1")
    wrk = serve.ensure_wrk()
    cfg = serve.BenchConfig(duration_s=args.duration)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rps: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="trajops-bench-compare-") as tmp_name:
        tmp = Path(tmp_name)
        with worktree(args.baseline, tmp / "baseline") as baseline:
            envs = side_envs(
                tmp, ("echo", "baseline", "current"), tmp / "baseline", model=args.model
            )
            envs["current"].update(extra)
            keys = {n: serve.create_api_key(envs[n]) for n in ("baseline", "current")}
            for _ in range(args.rounds):
                for workers in args.workers:
                    for name, env in envs.items():  # interleaved: drift hits all alike
                        kind = "echo" if name == "echo" else "trajops"
                        server = serve.start_server(kind, workers=workers, env=env, logs=tmp)
                        try:
                            for agents in args.agents:
                                for conns in args.connections:
                                    point = serve.measure(
                                        wrk, server, kind, workers=workers, conns=conns,
                                        cfg=cfg, tmp=tmp, api_key=keys.get(name, ""),
                                        agents=agents,
                                    )  # fmt: skip
                                    if point.errors:
                                        raise SystemExit(
                                            f"{name} a{agents} w{workers} c{conns}: "
                                            f"{point.errors} errors {point.error_kinds}"
                                        )
                                    per = rps.setdefault(f"a{agents} w{workers} c{conns}", {})
                                    per.setdefault(name, []).append(round(point.rps))
                        finally:
                            serve.stop(server)
    points: list[dict[str, Any]] = []
    for point, per in rps.items():
        med = {name: statistics.median(v) for name, v in per.items()}
        ratio = round(med["current"] / med["baseline"], 3)
        row = {
            "point": point,
            "median_rps": med,
            "current_over_baseline": ratio,
            "current_slower_by_5_percent": ratio <= THRESHOLD,
            "per_round_current_over_baseline": [
                round(c / b, 3) for c, b in zip(per["current"], per["baseline"], strict=True)
            ],
            "baseline_over_echo": round(med["baseline"] / med["echo"], 3),
            "current_over_echo": round(med["current"] / med["echo"], 3),
            "rounds": per,
        }
        points.append(row)
        print(
            f"  {point}: current/baseline {ratio}"
            f"{' (>= 5 % slower)' if row['current_slower_by_5_percent'] else ''} "
            f"(per round {row['per_round_current_over_baseline']}); "
            f"current/echo {row['current_over_echo']}, baseline/echo {row['baseline_over_echo']}",
            flush=True,
        )
    result = {
        "command": "python bench/serve_compare.py " + " ".join(argv or sys.argv[1:]),
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "cpu_model": serve.cpu_model()},
        "baseline": baseline,
        "current_env": extra,
        "model": args.model,
        "seconds_per_point": args.duration,
        "unique_bodies": True,
        "threshold_current_over_baseline": THRESHOLD,
        "points": points,
    }
    out = serve.write_result(args.out, result)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

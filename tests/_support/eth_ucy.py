"""A hand-made ETH/UCY layout for tests: ``frame agent x y`` files of straight walkers."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_walkers(
    path: Path, *, n_agents: int, n_frames: int, seed: int, frame_ids: list[int] | None = None
) -> None:
    """``frame agent x y`` lines of walkers on straight lines (CV is exact up to the noise)."""
    rng = np.random.default_rng(seed)
    frames = frame_ids if frame_ids is not None else [10 * i for i in range(n_frames)]
    lines = []
    for a in range(n_agents):
        start, vel = rng.uniform(-5, 5, 2), rng.uniform(-0.4, 0.4, 2)
        for i, f in enumerate(frames):
            x, y = start + vel * i + rng.normal(0, 0.02, 2)
            lines.append(f"{f}\t{a}\t{x:.4f}\t{y:.4f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sorted(lines, key=lambda s: int(s.split()[0]))) + "\n")

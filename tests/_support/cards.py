"""A per-window error table, the input of performance cards (as training logs it)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def per_window(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "scene": np.where(np.arange(n) < n // 2, "s1", "s2"),
            "agent_id": (np.arange(n) // 3).astype(str),
            "start_frame": np.arange(n) * 10,
            "ade": rng.gamma(2.0, 0.2, n),
            "fde": rng.gamma(2.0, 0.4, n),
            "speed": rng.uniform(0.0, 2.0, n),
            "density": rng.integers(0, 8, n),
            "heading_deg": rng.uniform(0, 360, n),
            "cv_fde": rng.gamma(2.0, 0.3, n),
        }
    )

"""What a training run leaves behind besides the model: evaluation, plots, model card, profile.

Artifact layout of a run (paths relative to the run's artifact root)::

    evaluation.json              overall / per scene / per horizon / per group metrics
    plots/trajectories.png       sample forecasts on test windows
    plots/ade_by_horizon.png     mean displacement per predicted step
    model_card.md                what the model is, what it was trained on, how good it is
    reference/features.parquet   kinematic features of the training windows (drift reference)

The cards are written by :mod:`trajops.cards.store` and the drift reference by
:mod:`trajops.monitoring.reference`; this module scores the model and writes the rest.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trajops import STEP_S
from trajops.data.windows import WindowSet
from trajops.evaluation.groups import grouped_rows
from trajops.evaluation.metrics import ade, fde, min_ade_fde, per_horizon
from trajops.evaluation.plots import plot_horizon, plot_samples
from trajops.evaluation.protocol import field_metrics
from trajops.models.base import Forecaster

EVALUATION_PATH = "evaluation.json"
MODEL_CARD_PATH = "model_card.md"
TRAJECTORY_PLOT_PATH = "plots/trajectories.png"
HORIZON_PLOT_PATH = "plots/ade_by_horizon.png"
MIN_OF_K = 20
"""K of the best-of-K metrics (the literature's minADE20 / minFDE20)."""
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def metric_key(*parts: str) -> str:
    """An MLflow-safe metric name from parts (``"[0, 0.3) m/s"`` -> ``0_0.3_m_s``)."""
    return "/".join(_METRIC_NAME.sub("_", p).strip("_") for p in parts)


@dataclass
class Evaluation:
    """Test-set metrics of one model.

    Attributes:
        ade, fde: overall metres.
        min_ade, min_fde: best of :data:`MIN_OF_K` samples.
        horizon: ``(T_pred,)`` mean error per predicted step.
        scenes: scene -> ``{"n", "ade", "fde"}``.
        groups: rows of :func:`trajops.evaluation.groups.grouped_rows` (speed, density bins).
    """

    n: int
    ade: float
    fde: float
    min_ade: float
    min_fde: float
    horizon: list[float]
    scenes: dict[str, dict[str, float]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    field_metrics: dict[str, float] = field(default_factory=dict)
    """Miss and collision rates, KDE NLL and coverage of the samples
    (:func:`trajops.evaluation.protocol.field_metrics`)."""

    def metrics(self, prefix: str = "test") -> dict[str, float]:
        """Flat MLflow metrics (the per-horizon curve is logged separately, step = t)."""
        out = {
            f"{prefix}_ade": self.ade,
            f"{prefix}_fde": self.fde,
            f"{prefix}_min_ade_{MIN_OF_K}": self.min_ade,
            f"{prefix}_min_fde_{MIN_OF_K}": self.min_fde,
            **{f"{prefix}_{k}": v for k, v in self.field_metrics.items()},
        }
        for scene, row in self.scenes.items():
            out[metric_key(f"{prefix}_ade", "scene", scene)] = row["ade"]
            out[metric_key(f"{prefix}_fde", "scene", scene)] = row["fde"]
        for group_row in self.groups:
            if group_row["group"] != "horizon" and group_row["n"] > 0:
                key = metric_key(f"{prefix}_ade", str(group_row["group"]), str(group_row["bin"]))
                out[key] = group_row["ade"]
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: empty bins carry ``null`` metrics, never NaN)."""
        groups = [
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in r.items()
            }
            for r in self.groups
            if r["group"] != "horizon"
        ]
        return {
            "n": self.n,
            "ade": self.ade,
            "fde": self.fde,
            f"min_ade_{MIN_OF_K}": self.min_ade,
            f"min_fde_{MIN_OF_K}": self.min_fde,
            **{k: (v if math.isfinite(v) else None) for k, v in self.field_metrics.items()},
            "horizon": [
                {"t_s": round((i + 1) * STEP_S, 6), "error": e} for i, e in enumerate(self.horizon)
            ],
            "scenes": self.scenes,
            "groups": groups,
        }


def evaluate(
    model: Forecaster, windows: WindowSet, *, seed: int = 0
) -> tuple[Evaluation, np.ndarray]:
    """Score ``model`` on ``windows``; also returns the deterministic forecast ``(N, T_pred, 2)``."""
    pred = model.predict(windows.obs, neighbours=windows.neighbours)  # (N, T_pred, 2)
    samples = model.predict(
        windows.obs, neighbours=windows.neighbours, num_samples=MIN_OF_K, seed=seed
    )  # (N, K, T_pred, 2)
    min_ade, min_fde = min_ade_fde(samples, windows.fut)
    scenes: dict[str, dict[str, float]] = {}
    for scene in dict.fromkeys(windows.scene.tolist()):
        sel = windows.scene == scene
        scenes[str(scene)] = {
            "n": int(sel.sum()),
            "ade": ade(pred[sel], windows.fut[sel]),
            "fde": fde(pred[sel], windows.fut[sel]),
        }
    report = Evaluation(
        n=len(windows),
        ade=ade(pred, windows.fut),
        fde=fde(pred, windows.fut),
        min_ade=min_ade,
        min_fde=min_fde,
        horizon=[float(e) for e in per_horizon(pred, windows.fut)],
        scenes=scenes,
        groups=grouped_rows(pred, windows, model=model.name),
        field_metrics=field_metrics(pred, samples, windows),
    )
    return report, pred


def write_plots(
    model: Forecaster, windows: WindowSet, pred: np.ndarray, folder: Path, *, seed: int = 0
) -> list[Path]:
    """Sample-forecast grid and error-by-horizon plot of the test windows."""
    idx = np.linspace(0, len(windows) - 1, min(6, len(windows))).astype(int)
    sub = windows.subset(idx)
    samples = model.predict(sub.obs, neighbours=sub.neighbours, num_samples=5, seed=seed)
    return [
        plot_samples(sub.obs, samples, sub.fut, folder / TRAJECTORY_PLOT_PATH, title=model.name),
        plot_horizon({model.name: per_horizon(pred, windows.fut)}, folder / HORIZON_PLOT_PATH),
    ]


def write_evaluation(evaluation: Evaluation, folder: Path, *, extra: dict[str, Any]) -> Path:
    """``evaluation.json`` under ``folder``."""
    path = folder / EVALUATION_PATH
    path.write_text(
        json.dumps({**extra, **evaluation.to_dict()}, indent=2, default=str, allow_nan=False)
    )
    return path

"""Evaluation: displacement metrics, grouped breakdowns, the leave-one-scene-out protocol, plots."""

from trajops.evaluation.groups import GroupConfig, grouped_rows, horizon_rows
from trajops.evaluation.metrics import ade, displacement, fde, min_ade_fde, per_horizon
from trajops.evaluation.plots import horizon_errors, plot_horizon, plot_samples
from trajops.evaluation.protocol import (
    AVERAGE,
    PROTOCOLS,
    EvaluationResult,
    Fold,
    average_rows,
    evaluate_models,
    load_fold,
    score,
    sgan_windows,
)

__all__ = [
    "AVERAGE",
    "PROTOCOLS",
    "EvaluationResult",
    "Fold",
    "GroupConfig",
    "ade",
    "average_rows",
    "displacement",
    "evaluate_models",
    "fde",
    "grouped_rows",
    "horizon_errors",
    "horizon_rows",
    "load_fold",
    "min_ade_fde",
    "per_horizon",
    "plot_horizon",
    "plot_samples",
    "score",
    "sgan_windows",
]

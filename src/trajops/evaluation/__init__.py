"""Evaluation: displacement, miss, sample and collision metrics, grouped breakdowns, the
leave-one-scene-out protocol, plots."""

from trajops.evaluation.groups import GroupConfig, grouped_rows, horizon_rows
from trajops.evaluation.metrics import (
    ade,
    coverage,
    displacement,
    fde,
    kde_nll,
    min_ade_fde,
    min_fde_miss_rate,
    miss_rate,
    per_horizon,
)
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
from trajops.evaluation.scene_metrics import colliding_agents, collision_rate, scene_groups

__all__ = [
    "AVERAGE",
    "PROTOCOLS",
    "EvaluationResult",
    "Fold",
    "GroupConfig",
    "ade",
    "average_rows",
    "colliding_agents",
    "collision_rate",
    "coverage",
    "displacement",
    "evaluate_models",
    "fde",
    "grouped_rows",
    "horizon_errors",
    "horizon_rows",
    "kde_nll",
    "load_fold",
    "min_ade_fde",
    "min_fde_miss_rate",
    "miss_rate",
    "per_horizon",
    "plot_horizon",
    "plot_samples",
    "scene_groups",
    "score",
    "sgan_windows",
]

"""Evaluation: displacement metrics, grouped breakdowns, the leave-one-scene-out protocol, plots."""

from trajops.evaluation.metrics import ade, displacement, fde, min_ade_fde, per_horizon

__all__ = ["ade", "displacement", "fde", "min_ade_fde", "per_horizon"]

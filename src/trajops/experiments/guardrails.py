"""Guardrails: operational limits a challenger must respect whatever its accuracy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trajops.experiments.config import Guardrails
from trajops.experiments.repository import ArmSamples

_MAX_ABS_POSITION_M = 1e4


@dataclass(frozen=True)
class Breach:
    """One guardrail an arm broke."""

    arm: str
    guardrail: str
    value: float
    limit: float

    @property
    def message(self) -> str:
        return (
            f"arm {self.arm!r}: {self.guardrail} {self.value:.4g} above the limit {self.limit:.4g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def is_invalid_output(pred: np.ndarray) -> bool:
    """True when a forecast holds NaN/inf or positions no pedestrian reaches.

    Args:
        pred: ``(N, T_pred, 2)`` or ``(N, K, T_pred, 2)`` forecast.
    """
    return bool(not np.isfinite(pred).all() or np.abs(pred).max(initial=0.0) > _MAX_ABS_POSITION_M)


def p99(latency_ms: np.ndarray) -> float | None:
    """99th percentile latency, or None without data."""
    return float(np.percentile(latency_ms, 99)) if len(latency_ms) else None


def check(arm: str, samples: ArmSamples, limits: Guardrails) -> list[Breach]:
    """The guardrails ``arm`` breaks; none are judged before ``limits.min_requests`` requests."""
    if samples.requests < limits.min_requests:
        return []
    out: list[Breach] = []
    latency = p99(samples.latency_ms)
    if latency is not None and latency > limits.p99_latency_ms:
        out.append(Breach(arm, "p99_latency_ms", latency, limits.p99_latency_ms))
    error_rate = samples.errors / samples.requests
    if error_rate > limits.error_rate:
        out.append(Breach(arm, "error_rate", error_rate, limits.error_rate))
    invalid_rate = samples.invalid / samples.requests
    if invalid_rate > limits.invalid_rate:
        out.append(Breach(arm, "invalid_rate", invalid_rate, limits.invalid_rate))
    return out

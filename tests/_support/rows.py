"""Prediction-log rows as the API hands them to the log writer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def prediction_rows(n: int, *, prefix: str = "r", version: str = "1") -> list[dict[str, Any]]:
    """``n`` rows of the ``predictions`` table with request ids ``{prefix}0 .. {prefix}{n-1}``."""
    now = datetime.now(UTC)
    return [
        {
            "request_id": f"{prefix}{i}",
            "created_at": now,
            "model_name": "trajectory-forecaster",
            "model_version": version,
            "variant": "default",
            "agent_key": f"a{i}",
            "scene_key": None,
            "inputs": [[0.0, float(t)] for t in range(8)],
            "outputs": [[0.0, 8.0 + t] for t in range(12)],
            "step_s": 0.4,
            "latency_ms": 1.5,
        }
        for i in range(n)
    ]

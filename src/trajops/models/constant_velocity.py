"""Constant velocity: the strong baseline of pedestrian forecasting."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trajops import T_PRED
from trajops.data.windows import WindowSet


@dataclass(frozen=True)
class ConstantVelocityConfig:
    angle_sigma_deg: float = 25.0
    """Std of the heading noise used for K > 1 samples (the angular-noise baseline)."""
    speed_sigma: float = 0.1
    """Relative std of the speed noise used for K > 1 samples."""
    t_pred: int = T_PRED


class ConstantVelocity:
    """Extrapolates the last observed step; samples perturb heading and speed."""

    name: ClassVar[str] = "cv"
    scene_aware: ClassVar[bool] = False
    """Ignores ``neighbours``: callers may skip building them."""

    def __init__(self, config: ConstantVelocityConfig | None = None, **overrides: Any) -> None:
        base = config or ConstantVelocityConfig()
        self.config = ConstantVelocityConfig(**{**asdict(base), **overrides})
        self._steps = np.arange(1, self.config.t_pred + 1, dtype=np.float64)  # (T_pred,)
        self._step_column = self._steps[:, None]  # (T_pred, 1)

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> dict[str, Any]:
        return {}

    def predict(
        self,
        obs: np.ndarray,
        *,
        neighbours: np.ndarray | None = None,
        num_samples: int = 1,
        seed: int | None = None,
    ) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)  # (N, T_obs, 2)
        if num_samples <= 1:
            # the serving hot path (one agent is common): as few numpy calls as the broadcast
            # needs, the same arithmetic as below (last + vel * step, in float64)
            last_step = obs[:, -1:]  # (N, 1, 2)
            out = (last_step - obs[:, -2:-1]) * self._step_column  # (N, T_pred, 2)
            out += last_step
            return out.astype(np.float32)
        last = obs[:, -1]  # (N, 2)
        vel = obs[:, -1] - obs[:, -2]  # (N, 2)
        steps = self._steps  # (T_pred,)
        rng = np.random.default_rng(seed)
        n = obs.shape[0]
        angle = np.deg2rad(self.config.angle_sigma_deg) * rng.standard_normal((n, num_samples))
        angle[:, 0] = 0.0  # the first sample is the deterministic forecast
        scale = 1.0 + self.config.speed_sigma * rng.standard_normal((n, num_samples))
        scale[:, 0] = 1.0
        cos, sin = np.cos(angle), np.sin(angle)
        vx = scale * (cos * vel[:, None, 0] - sin * vel[:, None, 1])  # (N, K)
        vy = scale * (sin * vel[:, None, 0] + cos * vel[:, None, 1])  # (N, K)
        v = np.stack([vx, vy], axis=-1)  # (N, K, 2)
        return (last[:, None, None] + v[:, :, None] * steps[None, None, :, None]).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return asdict(self.config)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.params()))

    @classmethod
    def load(cls, path: Path) -> ConstantVelocity:
        return cls(ConstantVelocityConfig(**json.loads((path / "config.json").read_text())))

"""Ridge regression on agent-centric displacements: a closed-form learned baseline.

Each window is moved into its agent frame (last observed position at the origin, last
observed velocity along +x; see :mod:`trajops.data.augment`). The model regresses the future
positions' deviation from constant velocity on the observed positions, so a strong ridge
penalty falls back to constant velocity. ``alpha`` is chosen on the validation split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trajops import T_OBS, T_PRED
from trajops.data.augment import agent_frame
from trajops.data.windows import WindowSet
from trajops.errors import ModelLoadError, ValidationError
from trajops.models.base import check_obs


@dataclass(frozen=True)
class LinearConfig:
    """Hyper-parameters of :class:`LinearForecaster`."""

    alpha: float = 1.0
    """Ridge penalty used when no validation split is given."""
    alpha_grid: tuple[float, ...] = field(default=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4))
    """Candidates searched on the validation split (by validation ADE)."""
    t_obs: int = T_OBS
    t_pred: int = T_PRED


def _cv_future(obs_agent: np.ndarray, t_pred: int) -> np.ndarray:
    """Constant-velocity future in the agent frame: ``(N, T_obs, 2) -> (N, T_pred, 2)``."""
    vel = obs_agent[:, -1] - obs_agent[:, -2]  # (N, 2)
    steps = np.arange(1, t_pred + 1, dtype=np.float64)  # (T_pred,)
    return obs_agent[:, -1][:, None] + vel[:, None] * steps[None, :, None]


class LinearForecaster:
    """Ridge regression from agent-frame observed positions to agent-frame future offsets."""

    name: ClassVar[str] = "linear"
    scene_aware: ClassVar[bool] = False
    """Ignores ``neighbours``: callers may skip building them."""

    def __init__(self, config: LinearConfig | None = None, **overrides: Any) -> None:
        base = asdict(config or LinearConfig())
        if "alpha_grid" in overrides:
            overrides["alpha_grid"] = tuple(float(a) for a in overrides["alpha_grid"])
        self.config = LinearConfig(**{**base, **overrides})
        self.weights: np.ndarray | None = None  # (F + 1, T_pred * 2), last row: intercept
        self.residual_cov: np.ndarray | None = None  # (T_pred * 2, T_pred * 2)
        self.alpha_: float = self.config.alpha

    # --- features -----------------------------------------------------------------------
    def _design(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """Features ``(N, F + 1)``, CV future in the agent frame ``(N, T_pred, 2)``, frame."""
        frame = agent_frame(obs)
        obs_agent = frame.to_agent(obs)  # (N, T_obs, 2)
        x = obs_agent[:, :-1].reshape(len(obs), -1)  # (N, (T_obs-1)*2): the last point is 0
        x = np.concatenate([x, np.ones((len(obs), 1))], axis=1)  # (N, F + 1)
        return x, _cv_future(obs_agent, self.config.t_pred), frame

    @staticmethod
    def _solve(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
        penalty = alpha * np.eye(x.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        return np.linalg.solve(x.T @ x + penalty, x.T @ y)  # (F + 1, T_pred * 2)

    # --- Forecaster protocol ------------------------------------------------------------
    def fit(self, train: WindowSet, val: WindowSet | None = None) -> dict[str, Any]:
        """Solve the ridge problem; with ``val``, pick ``alpha`` from the grid by validation ADE.

        Returns:
            ``{"alpha": float, "val_ade": {alpha: ade, ...}, "train_ade": float}``.
        """
        if len(train) == 0:
            raise ValidationError(
                "no training windows", details=[{"loc": ["train"], "msg": "empty"}]
            )
        x, cv, frame = self._design(check_obs(train.obs, self.config.t_obs))
        y = (frame.to_agent(train.fut) - cv).reshape(len(train), -1)  # (N, T_pred * 2)
        history: dict[str, Any] = {}
        if val is not None and len(val) > 0:
            xv, cvv, frame_v = self._design(check_obs(val.obs, self.config.t_obs))
            true_v = frame_v.to_agent(val.fut)  # (Nv, T_pred, 2)
            scores: dict[float, float] = {}
            for alpha in self.config.alpha_grid:
                w = self._solve(x, y, alpha)
                pred = cvv + (xv @ w).reshape(cvv.shape)
                scores[alpha] = float(np.linalg.norm(pred - true_v, axis=-1).mean())
            self.alpha_ = min(scores, key=lambda a: scores[a])
            history["val_ade"] = scores
        else:
            self.alpha_ = self.config.alpha
        self.weights = self._solve(x, y, self.alpha_)
        residual = y - x @ self.weights  # (N, T_pred * 2)
        self.residual_cov = np.cov(residual, rowvar=False)
        history["alpha"] = self.alpha_
        history["train_ade"] = float(
            np.linalg.norm(residual.reshape(len(train), -1, 2), axis=-1).mean()
        )
        return history

    def predict(
        self,
        obs: np.ndarray,
        *,
        neighbours: np.ndarray | None = None,
        num_samples: int = 1,
        seed: int | None = None,
    ) -> np.ndarray:
        """Forecast ``(N, T_pred, 2)``; with K > 1, ``(N, K, T_pred, 2)`` where sample 0 is
        the deterministic forecast and the others add Gaussian residuals of the training fit."""
        if self.weights is None or self.residual_cov is None:
            raise ValidationError("the linear model is not fitted; call fit() first")
        obs = check_obs(obs, self.config.t_obs)
        if len(obs) == 0:  # an empty request: nothing to transform
            shape = (
                (0, self.config.t_pred, 2)
                if num_samples <= 1
                else (0, num_samples, self.config.t_pred, 2)
            )
            return np.zeros(shape, np.float32)
        x, cv, frame = self._design(obs)
        mean = cv + (x @ self.weights).reshape(cv.shape)  # (N, T_pred, 2) agent frame
        if num_samples <= 1:
            return frame.to_world(mean).astype(np.float32)
        rng = np.random.default_rng(seed)
        dim = self.residual_cov.shape[0]
        noise = rng.multivariate_normal(
            np.zeros(dim), self.residual_cov, size=(len(obs), num_samples)
        )
        noise[:, 0] = 0.0
        samples = mean[:, None] + noise.reshape(len(obs), num_samples, self.config.t_pred, 2)
        return frame.to_world(samples).astype(np.float32)  # (N, K, T_pred, 2)

    def params(self) -> dict[str, Any]:
        """Hyper-parameters plus the selected ``alpha``."""
        out = asdict(self.config)
        out["alpha_grid"] = list(self.config.alpha_grid)
        out["selected_alpha"] = self.alpha_
        return out

    def save(self, path: Path) -> None:
        """Write ``config.json`` and ``weights.npz`` into the folder ``path``."""
        if self.weights is None or self.residual_cov is None:
            raise ValidationError("cannot save an unfitted linear model")
        path.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        cfg["alpha_grid"] = list(self.config.alpha_grid)
        (path / "config.json").write_text(json.dumps({"config": cfg, "alpha": self.alpha_}))
        np.savez(path / "weights.npz", weights=self.weights, residual_cov=self.residual_cov)

    @classmethod
    def load(cls, path: Path) -> LinearForecaster:
        """Read a model written by :meth:`save`."""
        try:
            header = json.loads((path / "config.json").read_text())
            arrays = np.load(path / "weights.npz")
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load linear model from {path}: {exc}") from None
        model = cls(LinearConfig(**header["config"]))
        model.alpha_ = float(header["alpha"])
        model.weights = arrays["weights"]
        model.residual_cov = arrays["residual_cov"]
        return model

"""The forecaster contract shared by every model, the pyfunc wrapper, the API and batch jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from trajops.data.windows import WindowSet
from trajops.errors import ValidationError


@runtime_checkable
class Forecaster(Protocol):
    """A trajectory forecaster.

    ``predict`` maps observed positions to future positions. ``neighbours`` holds the observed
    positions of other agents of the same scene (``(N, K, T_obs, 2)``, NaN where unseen);
    models that are not scene-aware ignore it (and may say so with a class attribute
    ``scene_aware = False``, so that callers skip building neighbours). With ``num_samples`` K > 1 the result has a
    sample axis: ``(N, K, T_pred, 2)``; with K = 1 it is ``(N, T_pred, 2)``.
    """

    name: ClassVar[str]

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> dict[str, Any]:
        """Fit on training windows, select on validation windows; returns a training history
        (e.g. ``{"train_loss": [...], "val_loss": [...], "best_epoch": int}``)."""
        ...

    def predict(
        self,
        obs: np.ndarray,
        *,
        neighbours: np.ndarray | None = None,
        num_samples: int = 1,
        seed: int | None = None,
    ) -> np.ndarray:
        """``obs (N, T_obs, 2) -> (N, T_pred, 2)`` or ``(N, K, T_pred, 2)`` when K > 1."""
        ...

    def params(self) -> dict[str, Any]:
        """Every hyper-parameter, for tracking."""
        ...

    def save(self, path: Path) -> None:
        """Write the fitted model into the folder ``path``."""
        ...

    @classmethod
    def load(cls, path: Path) -> Forecaster:
        """Read a model written by :meth:`save`."""
        ...


def check_obs(obs: np.ndarray, t_obs: int) -> np.ndarray:
    """``obs`` as a float64 ``(N, t_obs, 2)`` array of finite positions, or a ValidationError."""
    obs = np.asarray(obs, dtype=np.float64)
    if obs.ndim != 3 or obs.shape[1:] != (t_obs, 2):
        raise ValidationError(
            f"obs must have shape (N, {t_obs}, 2), got {obs.shape}",
            details=[{"loc": ["obs"], "msg": f"expected (N, {t_obs}, 2)"}],
        )
    if not np.isfinite(obs).all():
        raise ValidationError(
            "obs holds NaN or infinite positions", details=[{"loc": ["obs"], "msg": "not finite"}]
        )
    return obs

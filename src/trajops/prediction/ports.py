"""What the prediction service needs from the rest of the platform, as Protocols: a log for
answered predictions and their realised futures (the
:class:`~trajops.monitoring.service.Monitor`) and the running
experiment (:class:`~trajops.experiments.runtime.ExperimentRuntime`). Kept apart so that neither
package is imported by the service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from trajops.experiments.routing import Route
    from trajops.prediction.service import PredictionResult
    from trajops.prediction.tracks import Realised


class PredictionLog(Protocol):
    """Where answered predictions are logged (:class:`~trajops.monitoring.service.Monitor`)."""

    def log_prediction(
        self,
        *,
        request_id: str,
        model_name: str,
        model_version: str,
        variant: str,
        agent_ids: Sequence[str],
        scene_id: str | None,
        obs: np.ndarray,
        pred: np.ndarray,
        step_s: float,
        latency_ms: float,
        obs_decimals: int | None = None,
        observed_at: float | None = None,
    ) -> None: ...


class TruthLog(Protocol):
    """Where forecasts scored against their realised future go
    (:class:`~trajops.monitoring.service.Monitor`: ``feedback`` rows through the durable log)."""

    def log_realised(self, realised: Sequence[Realised]) -> None: ...


class Experiments(Protocol):
    """The running A/B experiment as the service sees it
    (:class:`~trajops.experiments.runtime.ExperimentRuntime`)."""

    def unit_id(self, *, key_id: str | None, agent_id: str, scene_id: str | None) -> str | None:
        """The unit the running experiment assigns by (None when none runs)."""
        ...

    def route(self, unit_id: str | None) -> Route | None:
        """The arm serving ``unit_id`` (None: the default model serves it)."""
        ...

    def arm_refs(self) -> set[str]:
        """The references the running experiment's arms serve."""
        ...

    def record(
        self,
        result: PredictionResult,
        *,
        request_id: str,
        obs: np.ndarray,
        agent_ids: list[str],
        latency_ms: float,
    ) -> None:
        """Record the exposure of a routed request (and start its shadow scoring)."""
        ...

"""The prediction service: model resolution, cache, forecasting. No HTTP in here.

The hot path stays in numpy: positions are normalised once (:func:`normalise_obs`), hashed
for the cache key, and handed to the forecaster's numpy ``predict``. Predictions whose measured
cost is a few hundred microseconds run on the event loop (a thread hop would cost more than the
work); bigger ones run in a worker thread so the loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trajops.serving.cache import PredictionCache, cache_key, input_digest, normalise_obs
from trajops.serving.metrics import ServingMetrics
from trajops.serving.pool import LoadedModel, ModelPool
from trajops.serving.schemas import RequestLimits

if TYPE_CHECKING:
    from trajops.experiments.routing import ExperimentRouter, Route

log = logging.getLogger(__name__)

DEFAULT_VARIANT = "default"
"""Variant of requests no experiment routed."""


@dataclass(frozen=True)
class ServiceConfig:
    """Tuning of the prediction service."""

    inline_budget_s: float = 0.0005
    """Predictions estimated cheaper than this run on the event loop, others in a thread."""


@dataclass(frozen=True)
class PredictionResult:
    """What one prediction produced.

    Attributes:
        predictions: ``(N, T_pred, 2)``, or ``(N, K, T_pred, 2)`` when K > 1; float32.
    """

    model: LoadedModel
    alias: str | None
    variant: str
    predictions: np.ndarray
    cached: bool
    inputs: np.ndarray
    """``(N, T_obs, 2)``: the positions the model saw (:func:`normalise_obs`, rounded to
    :data:`~trajops.serving.cache.ROUND_DECIMALS` places)."""
    route: Route | None = None
    """The experiment arm that served the request (None: not routed by an experiment)."""
    route_error: bool = False
    """The routed arm's model could not be used; the default model answered instead."""


class PredictionService:
    """Answers prediction requests from a :class:`ModelPool` through a cache."""

    def __init__(
        self,
        *,
        pool: ModelPool,
        cache: PredictionCache,
        metrics: ServingMetrics,
        limits: RequestLimits | None = None,
        config: ServiceConfig | None = None,
        experiments: ExperimentRouter | None = None,
    ) -> None:
        self.pool = pool
        self.experiments = experiments
        self.limits = limits or RequestLimits()
        self.cache = cache
        self.metrics = metrics
        self.config = config or ServiceConfig()
        backend = cache.backend
        self._hit = metrics.cache_lookups.labels(backend, "hit")
        self._miss = metrics.cache_lookups.labels(backend, "miss")
        self._lookup_error = metrics.cache_lookups.labels(backend, "error")
        self._get_error = metrics.cache_errors.labels(backend, "get")
        self._set_error = metrics.cache_errors.labels(backend, "set")
        self._counters: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def predict(
        self,
        *,
        obs: np.ndarray,
        num_samples: int,
        model_ref: str | None,
        unit_id: str | None = None,
    ) -> PredictionResult:
        """Forecast the agents of one scene.

        Args:
            obs: ``(N, T_obs, 2)`` validated observed positions.
            num_samples: K samples per agent.
            model_ref: alias or version; ``None`` for the default model (or the experiment's).
            unit_id: the running experiment's assignment unit; requests naming a model are
                never routed.

        Returns:
            The prediction and where it came from.

        Raises:
            ModelNotFoundError: unknown alias or version.
            ServiceUnavailable: no model can be loaded for the reference.
        """
        route = None
        if model_ref is None and unit_id is not None and self.experiments is not None:
            route = self.experiments.route(unit_id)
        norm = normalise_obs(obs)  # (N, T_obs, 2)
        digest = input_digest(norm, num_samples)
        route_error = False
        try:
            model, alias = await self._model(route.model_ref if route is not None else model_ref)
            out, cached = await self._forecast(model, norm, num_samples, digest)
        except Exception as exc:
            if route is None:
                raise
            # A routed arm that cannot load or raises on this input is counted against the
            # arm (its error rate is a guardrail); the caller gets the default model's answer.
            route_error = True
            log.warning("arm %s (%s) failed: %s", route.variant, route.model_ref, exc)
            model, alias = await self._model(None)
            out, cached = await self._forecast(model, norm, num_samples, digest)
        variant = route.variant if route is not None else DEFAULT_VARIANT
        self._count(variant, model.version, len(norm))
        return PredictionResult(
            model=model,
            alias=alias,
            variant=variant,
            predictions=out,
            cached=cached,
            inputs=norm,
            route=route,
            route_error=route_error,
        )

    async def _model(self, ref: str | None) -> tuple[LoadedModel, str | None]:
        hit = self.pool.resolve(ref)
        return hit if hit is not None else await self.pool.acquire(ref)

    async def _forecast(
        self, model: LoadedModel, norm: np.ndarray, num_samples: int, digest: bytes
    ) -> tuple[np.ndarray, bool]:
        """``model``'s forecast of ``norm (N, T_obs, 2)`` from the cache or computed; and
        whether it came from the cache."""
        key = cache_key(model_name=model.name, version=model.version, digest=digest)
        out = await self._get(key)
        if out is not None:
            return out, True
        seed = int.from_bytes(digest[:4], "little")  # same input, same samples, any replica
        cost = model.agent_seconds * len(norm) * num_samples
        if cost <= self.config.inline_budget_s:
            out = model.predict(norm, num_samples=num_samples, seed=seed)
        else:
            out = await asyncio.to_thread(model.predict, norm, num_samples=num_samples, seed=seed)
        await self._set(key, out)
        return out, False

    def _count(self, variant: str, version: str, agents: int) -> None:
        children = self._counters.get((variant, version))
        if children is None:  # labels() takes a lock and a dict walk; do it once per pair
            children = (
                self.metrics.predictions.labels(variant, version),
                self.metrics.predicted_agents.labels(variant),
            )
            self._counters[(variant, version)] = children
        children[0].inc()
        children[1].inc(agents)

    async def _get(self, key: str) -> np.ndarray | None:
        try:
            value = await self.cache.get(key)
        except Exception as exc:  # a cache failure is a miss, never a failed request
            self._lookup_error.inc()
            self._get_error.inc()
            log.debug("cache get failed: %s", exc)
            return None
        (self._miss if value is None else self._hit).inc()
        return value

    async def _set(self, key: str, value: np.ndarray) -> None:
        try:
            await self.cache.set(key, value)
        except Exception as exc:
            self._set_error.inc()
            log.debug("cache set failed: %s", exc)

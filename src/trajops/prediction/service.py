"""The prediction service: one parsed request in, a logged forecast out. No web framework here.

:meth:`PredictionService.answer` is the use case behind ``POST /v1/predict``: resolve the model
(the request's reference, the running experiment's arm, or the default), forecast through the
cache, hand the prediction rows to the log, and record the experiment exposure. The HTTP edge
parses the body into a :class:`PredictionRequest` and renders the :class:`Answer`.

Positions are normalised once (:func:`~trajops.prediction.cache.normalise_obs`), hashed for the
cache key, and handed to the forecaster's NumPy ``predict``. A prediction whose estimated cost
(the model's measured seconds per agent) is under ``inline_budget_s`` runs on the event loop,
where a thread hop would cost more than the work; bigger ones run in a worker thread. A
batchable model's deterministic forecasts (the neural forecaster) go through a
:class:`~trajops.prediction.batching.MicroBatcher` instead: requests that arrive together share
one forward pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from trajops import STEP_S
from trajops._ids import ordered_hex_ms
from trajops._refs import canonical_ref
from trajops.errors import PermissionDenied
from trajops.monitoring.metrics import ServingMetrics
from trajops.prediction.batching import BatchConfig, MicroBatcher
from trajops.prediction.cache import (
    ROUND_DECIMALS,
    PredictionCache,
    cache_key,
    input_digest,
    normalise_obs,
)
from trajops.prediction.pool import LoadedModel, ModelPool
from trajops.prediction.ports import Experiments, PredictionLog

if TYPE_CHECKING:
    from trajops.experiments.routing import Route

log = logging.getLogger(__name__)

DEFAULT_VARIANT = "default"
"""Variant of requests no experiment routed."""
RECENT_S = 60.0
"""How long an answered request counts as recent (its rows may still be on their way)."""
_ANSWERED_MAX = 100_000


@dataclass(frozen=True)
class ServiceConfig:
    """Tuning of the prediction service."""

    inline_budget_s: float = 0.0005
    """Predictions estimated cheaper than this run on the event loop, others in a thread."""
    batching: BatchConfig | None = field(default_factory=BatchConfig)
    """Micro-batching of batchable models' deterministic forecasts (None: off)."""


@dataclass(frozen=True)
class PredictionRequest:
    """A validated prediction request.

    Attributes:
        agent_ids: the agents' ids as sent (str or int), in order.
        obs: ``(N, T_obs, 2)`` float64 observed positions.
    """

    agent_ids: list[str | int]
    obs: np.ndarray
    scene_id: str | None = None
    model: str | None = None
    num_samples: int = 1
    observed_at: float | None = None
    """Unix seconds of the last observed position by the client's clock (streamed tracks)."""


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
    :data:`~trajops.prediction.cache.ROUND_DECIMALS` places)."""
    route: Route | None = None
    """The experiment arm that served the request (None: not routed by an experiment)."""
    route_error: bool = False
    """The routed arm's model could not be used; the default model answered instead."""


@dataclass(frozen=True)
class Answer:
    """A logged prediction, ready to render."""

    result: PredictionResult
    request_id: str
    latency_ms: float


class PredictionService:
    """Answers prediction requests from a :class:`ModelPool` through a cache, and logs them.

    Args:
        pool: the loaded models.
        cache: the prediction cache.
        metrics: where predictions and cache lookups are counted.
        log: where answered predictions go (``None``: not logged, e.g. in benchmarks).
        experiments: the running experiment's routing and exposure log (``None``: none).
        exposed: references a caller without the right to pin versions may name (besides the
            running experiment's arms).
        config: tuning.
    """

    def __init__(
        self,
        *,
        pool: ModelPool,
        cache: PredictionCache,
        metrics: ServingMetrics,
        log: PredictionLog | None = None,
        experiments: Experiments | None = None,
        exposed: Iterable[str] = ("champion", "challenger"),
        config: ServiceConfig | None = None,
    ) -> None:
        self.pool = pool
        self.exposed = frozenset(canonical_ref(ref) for ref in exposed)
        self._answered: OrderedDict[str, float] = OrderedDict()
        self.log = log
        self.experiments = experiments
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
        self._batchers: dict[tuple[str, str, datetime], MicroBatcher] = {}

    async def answer(
        self,
        request: PredictionRequest,
        *,
        key_id: str | None,
        request_id: str,
        started: float,
        may_pin: bool = True,
    ) -> Answer:
        """Forecast one request's scene, log it and record its experiment exposure.

        Args:
            request: the validated request.
            key_id: the API key that sent it (experiments may assign by client).
            request_id: the id its log rows and response carry.
            started: ``time.perf_counter()`` at the request's arrival (for its latency).
            may_pin: whether the caller may name any version; otherwise only an exposed
                reference (checked before anything is loaded).

        Raises:
            PermissionDenied: the request names a model the caller may not reach.
            ModelNotFoundError: unknown alias or version.
            ServiceUnavailable: no model can be loaded for the reference.
        """
        if request.model is not None and not may_pin:
            self.check_exposed(request.model)
        unit_id = None
        if self.experiments is not None and request.model is None:
            unit_id = self.experiments.unit_id(
                key_id=key_id, agent_id=str(request.agent_ids[0]), scene_id=request.scene_id
            )
        result = await self.predict(
            obs=request.obs,
            num_samples=request.num_samples,
            model_ref=request.model,
            unit_id=unit_id,
        )
        latency_ms = round((time.perf_counter() - started) * 1e3, 3)
        self._answered[request_id] = time.monotonic()
        if len(self._answered) > _ANSWERED_MAX:  # request ids come from callers: bounded
            self._answered.popitem(last=False)
        agent_ids = [str(a) for a in request.agent_ids]
        preds = result.predictions  # (N, T_pred, 2) or (N, K, T_pred, 2)
        if self.log is not None:  # cached answers too: they were served all the same
            self.log.log_prediction(
                request_id=request_id,
                model_name=result.model.name,
                model_version=result.model.version,
                variant=result.variant,
                agent_ids=agent_ids,
                scene_id=request.scene_id,
                obs=result.inputs,
                obs_decimals=ROUND_DECIMALS,
                pred=preds if request.num_samples == 1 else preds[:, 0],
                step_s=STEP_S,
                latency_ms=latency_ms,
                observed_at=request.observed_at,
            )
        if self.experiments is not None and result.route is not None:
            self.experiments.record(
                result,
                request_id=request_id,
                obs=request.obs,
                agent_ids=agent_ids,
                latency_ms=latency_ms,
            )
        return Answer(result=result, request_id=request_id, latency_ms=latency_ms)

    def answered_recently(self, request_id: str) -> bool:
        """Whether ``request_id`` was answered in the last :data:`RECENT_S` seconds, by this
        process or (for the time-ordered ids the service makes) by any replica."""
        at = self._answered.get(request_id)
        if at is not None and time.monotonic() - at < RECENT_S:
            return True
        made_ms = ordered_hex_ms(request_id)
        return made_ms is not None and 0 <= time.time() * 1e3 - made_ms < RECENT_S * 1e3

    def check_exposed(self, ref: str) -> None:
        """Raise :class:`PermissionDenied` unless ``ref`` is exposed to every predict key."""
        canonical = canonical_ref(ref)
        if canonical in self.exposed:
            return
        if self.experiments is not None and canonical in self.experiments.arm_refs():
            return
        raise PermissionDenied(
            f"model {ref!r} is not exposed to this key: name one of "
            f"{', '.join(sorted(self.exposed))}, or use a key with the 'pin' scope",
            details=[{"loc": ["body", "model"], "msg": "not exposed; needs the pin scope"}],
        )

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
        if num_samples == 1 and model.batchable and self.config.batching is not None:
            out = await self._batcher(model).predict(norm)
        elif cost <= self.config.inline_budget_s:
            out = model.predict(norm, num_samples=num_samples, seed=seed)
        else:
            out = await asyncio.to_thread(model.predict, norm, num_samples=num_samples, seed=seed)
        await self._set(key, out)
        return out, False

    def _batcher(self, model: LoadedModel) -> MicroBatcher:
        """The batcher of this loaded version (a swapped-in version gets its own)."""
        key = (model.name, model.version, model.loaded_at)
        batcher = self._batchers.get(key)
        if batcher is None:
            assert self.config.batching is not None
            for stale in [k for k, b in self._batchers.items() if not b.queued][:-4]:
                del self._batchers[stale]  # evicted versions' idle batchers
            batcher = self._batchers[key] = MicroBatcher(model, self.config.batching)
        return batcher

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

"""The serving side of A/B experiments: routing, exposure logging, shadow scoring, decisions.

:class:`ExperimentRuntime` is opened with the prediction service, which consults it through
its :class:`~trajops.prediction.service.Experiments` protocol:

* :meth:`ExperimentRuntime.route` answers from the :class:`~trajops.experiments.ExperimentRouter`
  (its copy of the running experiment is refreshed by a background task, never on the hot path);
* :meth:`ExperimentRuntime.record` queues the request's exposure row for the log writer and,
  in shadow mode, starts the challenger's scoring of a copy of the request as a background
  task: the caller already has the control's answer;
* every ``experiment_interval_s`` the running experiment is evaluated (statistics, guardrails,
  rollback / promotion) in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import anyio.to_thread
import numpy as np

from trajops.experiments import (
    ExperimentController,
    ExperimentRepository,
    ExperimentRouter,
    Route,
    exposure_row,
)
from trajops.experiments.guardrails import is_invalid_output
from trajops.monitoring.service import Monitor
from trajops.prediction.cache import normalise_obs
from trajops.prediction.pool import ModelPool
from trajops.settings import Settings

if TYPE_CHECKING:
    from trajops.prediction.service import PredictionResult

log = logging.getLogger(__name__)


class ExperimentRuntime:
    """Router, exposure and shadow logging, and the periodic evaluation of the experiment."""

    def __init__(
        self, *, settings: Settings, monitor: Monitor, pool: ModelPool, refresh_s: float = 2.0
    ) -> None:
        self.settings = settings
        self.monitor = monitor
        self.pool = pool
        self.refresh_s = refresh_s
        self.repo = ExperimentRepository(monitor.store)
        self.router = ExperimentRouter(self.repo, refresh_s=None)
        self._controller: ExperimentController | None = None
        self._loop: asyncio.Task[None] | None = None
        self._shadow: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self._refresh()
        self._loop = asyncio.create_task(self._run(), name="trajops-experiments")

    async def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._shadow:
            await asyncio.wait(self._shadow, timeout=timeout_s)

    def controller(self) -> ExperimentController:
        """The controller (built on first use: the registry client is created lazily)."""
        if self._controller is None:
            from trajops.registry.adapter import Registry

            registry = Registry.from_settings(self.settings)
            self._controller = ExperimentController.from_settings(
                self.settings, self.monitor.store, registry=registry
            )
        return self._controller

    async def _refresh(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.router.refresh)
            self.last_error = None
        except Exception as exc:  # the store may be down: keep routing on the last copy
            self.last_error = f"{exc.__class__.__name__}: {exc}"
            log.warning("experiment refresh failed: %s", self.last_error)

    async def _run(self) -> None:
        interval = self.settings.experiment_interval_s
        next_eval = time.monotonic() + interval
        while True:
            await asyncio.sleep(self.refresh_s)
            await self._refresh()
            current = self.router.current()
            if interval <= 0 or current is None or time.monotonic() < next_eval:
                continue
            next_eval = time.monotonic() + interval
            try:
                st = await anyio.to_thread.run_sync(self.controller().evaluate, current.id)
            except Exception as exc:
                log.warning("experiment %s evaluation failed: %s", current.id, exc)
                continue
            if st.action:
                log.warning("experiment %s: %s (%s)", current.id, st.action, st.verdict)
                await self._refresh()

    # --- hot path --------------------------------------------------------------------
    def unit_id(self, *, key_id: str | None, agent_id: str, scene_id: str | None) -> str | None:
        """The unit the running experiment assigns by (None when none runs)."""
        current = self.router.current()
        if current is None:
            return None
        unit = current.spec.unit
        if unit == "client":
            return key_id or None
        return scene_id if unit == "scene" else agent_id

    def route(self, unit_id: str | None) -> Route | None:
        """The arm serving ``unit_id`` (None: the default model serves it)."""
        return self.router.route(unit_id)

    def arm_refs(self) -> set[str]:
        """The references the running experiment's arms serve (none when none runs)."""
        return self.router.arm_refs()

    def record(
        self,
        result: PredictionResult,
        *,
        request_id: str,
        obs: np.ndarray,
        agent_ids: list[str],
        latency_ms: float,
    ) -> None:
        """Queue the exposure of a routed request; start its shadow scoring in shadow mode.

        Args:
            obs: ``(N, T_obs, 2)`` the request's observed positions.
        """
        route = result.route
        if route is None:
            return
        row = exposure_row(
            route,
            request_id=request_id,
            n_agents=len(agent_ids),
            latency_ms=latency_ms,
            error=result.route_error,
            invalid=is_invalid_output(result.predictions),
        )
        self.monitor.writer.submit("experiment_exposures", [row])
        if route.shadow_ref is not None:
            task = asyncio.create_task(self._score_shadow(route, request_id, obs, agent_ids))
            self._shadow.add(task)
            task.add_done_callback(self._shadow.discard)

    async def _score_shadow(
        self, route: Route, request_id: str, obs: np.ndarray, agent_ids: list[str]
    ) -> None:
        assert route.shadow_ref is not None and route.shadow_arm is not None
        started = time.perf_counter()
        error = invalid = False
        try:
            hit = self.pool.resolve(route.shadow_ref)
            model, _ = hit if hit is not None else await self.pool.acquire(route.shadow_ref)
            pred = await asyncio.to_thread(
                model.predict, normalise_obs(obs), num_samples=1, seed=0
            )  # (N, T_pred, 2)
            invalid = is_invalid_output(pred)
            self.monitor.log_shadow_prediction(
                experiment_id=route.experiment_id,
                arm=route.shadow_arm,
                request_id=request_id,
                model_version=model.version,
                agent_ids=agent_ids,
                pred=pred,
            )
        except Exception as exc:  # a failing challenger is a guardrail matter, not the caller's
            error = True
            log.warning("shadow scoring by %s failed: %s", route.shadow_ref, exc)
        latency_ms = (time.perf_counter() - started) * 1e3
        self.monitor.writer.submit(
            "experiment_exposures",
            [
                exposure_row(
                    route,
                    request_id=request_id,
                    arm=route.shadow_arm,
                    shadow=True,
                    n_agents=len(agent_ids),
                    latency_ms=latency_ms,
                    error=error,
                    invalid=invalid,
                )
            ],
        )

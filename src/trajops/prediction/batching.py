"""Adaptive micro-batching: concurrent requests to one model share one forward pass.

Worth it for models whose call has a large fixed cost (the neural forecaster: a torch forward
costs about the same for 1 scene as for 30). Scenes stay apart: each request's neighbours are
built from its own agents (:meth:`LoadedModel.predict_scenes`), then every agent of the batch
goes through the network at once; the network treats agents independently, so a batched
forecast equals the request's own.

Continuous batching, as BentoML's dispatcher adapts its window to observed latency: a request
that finds the model idle starts a forward at once; requests that arrive while a forward runs
wait for it and go together in the next one, up to ``max_batch_agents``. Under concurrency the
next batch may also wait a little for more requests, at most ``max_wait_ms`` and never longer
than half the recent forward time (waiting longer than a forward costs more than it saves).
A request therefore waits at most for the forward in flight, the gathering window and its own
forward. The queue is bounded (``max_queue`` requests): past it a request is refused at once
with :class:`Overloaded` (503 and ``Retry-After``), before anything is computed or logged.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from trajops.errors import ServiceUnavailable
from trajops.prediction.loading import LoadedModel


@dataclass(frozen=True)
class BatchConfig:
    """Limits of one model's batches."""

    max_batch_agents: int = 2048
    """Agents in one forward pass (a request larger than this runs alone)."""
    max_wait_ms: float = 2.0
    """Longest extra wait for more requests before a batch starts (0: never wait)."""
    max_queue: int = 512
    """Requests waiting for a model; past this a request gets 503 with Retry-After."""


class Overloaded(ServiceUnavailable):
    """The model's batch queue is full: retry after ``retry_after_s``."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, details=[{"loc": ["model"], "msg": "batch queue full"}])
        self.retry_after_s = retry_after_s


@dataclass
class _Pending:
    obs: np.ndarray  # (N, T_obs, 2)
    future: asyncio.Future[np.ndarray]
    queued_at: float


class MicroBatcher:
    """Batches one loaded model's deterministic forecasts (K = 1) on one event loop.

    Args:
        model: the model every batch runs (one batcher per loaded version: a request that
            resolved a version is answered by that version, even during a swap).
        config: limits.
    """

    def __init__(self, model: LoadedModel, config: BatchConfig | None = None) -> None:
        self.model = model
        self.config = config or BatchConfig()
        self._queue: deque[_Pending] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._forward_s = 0.0  # exponential moving average of a forward's duration
        self._last_batch = 0
        self.batches = 0
        self.batched_requests = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def predict(self, obs: np.ndarray) -> np.ndarray:
        """``model``'s ``(N, T_pred, 2)`` forecast of one scene ``obs (N, T_obs, 2)``.

        Raises:
            Overloaded: the queue is full.
            ModelLoadError: the model failed on the batch.
        """
        if len(self._queue) >= self.config.max_queue:
            raise Overloaded(
                f"model version {self.model.version} has {len(self._queue)} requests waiting; "
                "retry shortly",
                retry_after_s=max(1.0, self._forward_s * 2),
            )
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(obs, future, time.perf_counter()))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._queue:
            await self._gather()
            batch = self._take()
            started = time.perf_counter()
            try:
                outs = await asyncio.to_thread(self.model.predict_scenes, [p.obs for p in batch])
            except Exception as exc:  # every request of the batch gets the model's error
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            took = time.perf_counter() - started
            self._forward_s = took if self.batches == 0 else 0.8 * self._forward_s + 0.2 * took
            self.batches += 1
            self.batched_requests += len(batch)
            self._last_batch = len(batch)
            for p, out in zip(batch, outs, strict=True):
                if not p.future.done():  # its client may have gone
                    p.future.set_result(out)

    async def _gather(self) -> None:
        """Under concurrency, wait a little for more requests (adapted to the forward time)."""
        window = min(self.config.max_wait_ms / 1e3, self._forward_s / 2)
        if self._last_batch <= 1 or window <= 0:
            return  # no concurrency seen: answer at once
        deadline = self._queue[0].queued_at + window
        while self._agents() < self.config.max_batch_agents:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.0005))

    def _agents(self) -> int:
        return sum(len(p.obs) for p in self._queue)

    def _take(self) -> list[_Pending]:
        """The oldest requests up to ``max_batch_agents`` (at least one)."""
        batch = [self._queue.popleft()]
        agents = len(batch[0].obs)
        while self._queue and agents + len(self._queue[0].obs) <= self.config.max_batch_agents:
            agents += len(self._queue[0].obs)
            batch.append(self._queue.popleft())
        return batch

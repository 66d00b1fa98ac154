"""Agent tracks of the streaming route: recent positions, resampling, forecasts awaiting truth.

A client of ``POST /v1/tracks`` sends the positions its tracker sees, frame by frame. Each
agent's :class:`AgentTrack` keeps its recent sightings (one gap-free stretch: a sighting more
than ``max_gap_s`` after the previous one starts the track again, gaps are never bridged) and
the forecasts the service made for it that the track has not yet realised. The model's input
is the track resampled at the model's step, ending at the newest sighting; a forecast is scored
once the track has reached the end of its horizon, on the track resampled at the forecast's
steps.

Tracks live in a :class:`TrackStore`: in process (:class:`MemoryTrackStore`), or in Redis
(:class:`RedisTrackStore`) so that every replica behind a load balancer sees the same history.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import orjson

from trajops import STEP_S, T_OBS, T_PRED
from trajops.errors import ServiceUnavailable


@dataclass(frozen=True)
class TrackConfig:
    """How tracks are kept and resampled."""

    step_s: float = STEP_S
    t_obs: int = T_OBS
    t_pred: int = T_PRED
    max_gap_s: float = 1.0
    """Sightings farther apart than this are a gap: the track starts again after it."""
    tolerance_s: float = 0.02
    """How far a resampling instant may fall outside the sightings (clock jitter)."""
    ttl_s: float = 30.0
    """An agent unseen this long is forgotten."""
    max_points: int = 256
    """Most sightings kept per agent (a fast tracker keeps fewer seconds)."""
    max_pending: int = 64
    """Most forecasts awaiting their truth per agent (the oldest are dropped first)."""

    @property
    def history_s(self) -> float:
        """Seconds of track a forecast needs."""
        return (self.t_obs - 1) * self.step_s

    @property
    def horizon_s(self) -> float:
        return self.t_pred * self.step_s


@dataclass
class Pending:
    """A forecast awaiting its realised future."""

    t0: float
    request_id: str
    model_version: str
    variant: str
    positions: list[list[float]]  # (T_pred, 2)


@dataclass(frozen=True)
class Realised:
    """A forecast scored against where its agent went."""

    agent_key: str
    forecast: Pending
    truth: np.ndarray  # (T_pred, 2)
    ade: float
    fde: float


@dataclass
class AgentTrack:
    """One agent's recent sightings ``(t, x, y)``, oldest first, and its pending forecasts."""

    points: list[tuple[float, float, float]] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    @property
    def last_t(self) -> float | None:
        return self.points[-1][0] if self.points else None

    def span_s(self) -> float:
        return self.points[-1][0] - self.points[0][0] if self.points else 0.0

    def resample(self, times: np.ndarray, config: TrackConfig) -> np.ndarray | None:
        """Positions ``(len(times), 2)`` at ``times`` (linear between sightings), or None
        when a time falls outside the sightings by more than the tolerance."""
        if not self.points:
            return None
        pts = np.asarray(self.points, dtype=np.float64)  # (P, 3)
        lo, hi = pts[0, 0] - config.tolerance_s, pts[-1, 0] + config.tolerance_s
        if times.min() < lo or times.max() > hi:
            return None
        return np.stack(
            [np.interp(times, pts[:, 0], pts[:, 1]), np.interp(times, pts[:, 0], pts[:, 2])],
            axis=-1,
        )

    def observed(self, config: TrackConfig) -> np.ndarray | None:
        """The model's input ``(T_obs, 2)`` ending at the newest sighting, or None when the
        track is shorter than :attr:`TrackConfig.history_s`."""
        if not self.points:
            return None
        times = self.points[-1][0] - config.step_s * np.arange(config.t_obs - 1, -1, -1)
        return self.resample(times, config)

    def observe(
        self, t: float, x: float, y: float, key: str, config: TrackConfig
    ) -> list[Realised]:
        """Add a sighting (``t`` after :attr:`last_t`); score and drop the forecasts it
        realises; forget what no forecast or scoring needs any more.

        Returns:
            The forecasts realised by this sighting.
        """
        last = self.last_t
        if last is not None and t - last > config.max_gap_s:
            self.points.clear()  # a gap: never bridged, the forecasts across it go unscored
            self.pending.clear()
        self.points.append((t, x, y))
        realised: list[Realised] = []
        waiting: list[Pending] = []
        steps = config.step_s * np.arange(1, config.t_pred + 1)
        for forecast in self.pending:
            if forecast.t0 + config.horizon_s > t + config.tolerance_s:
                waiting.append(forecast)
                continue
            truth = self.resample(forecast.t0 + steps, config)
            if truth is None:  # its start fell out of the kept sightings
                continue
            err = np.linalg.norm(np.asarray(forecast.positions) - truth, axis=-1)  # (T_pred,)
            realised.append(Realised(key, forecast, truth, float(err.mean()), float(err[-1])))
        self.pending = waiting
        oldest = min([t - config.history_s, *(p.t0 for p in waiting)]) - config.step_s
        keep = next((i for i, p in enumerate(self.points) if p[0] >= oldest), len(self.points))
        del self.points[: max(0, keep - 1)]  # one sighting before ``oldest`` to interpolate from
        del self.points[: max(0, len(self.points) - config.max_points)]
        return realised

    def expect(self, forecast: Pending, config: TrackConfig) -> None:
        """Keep a forecast made at :attr:`last_t` until its horizon is realised (one per
        instant: a re-sent frame's second forecast is not kept)."""
        if any(p.t0 == forecast.t0 for p in self.pending):
            return
        self.pending.append(forecast)
        del self.pending[: max(0, len(self.pending) - config.max_pending)]

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "p": self.points,
                "f": [
                    [f.t0, f.request_id, f.model_version, f.variant, f.positions]
                    for f in self.pending
                ],
            }
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> AgentTrack:
        data = orjson.loads(blob)
        return cls(
            points=[(float(t), float(x), float(y)) for t, x, y in data["p"]],
            pending=[Pending(*f) for f in data["f"]],
        )


class TrackStore(Protocol):
    """Where agent tracks live between frames."""

    backend: str

    async def load(self, keys: list[str]) -> list[AgentTrack | None]:
        """The tracks of ``keys`` (None: unknown or expired)."""
        ...

    async def save(self, tracks: dict[str, AgentTrack]) -> None:
        """Store ``tracks``; each lives :attr:`TrackConfig.ttl_s` from now."""
        ...

    async def close(self) -> None: ...


class MemoryTrackStore:
    """Tracks in this process: at most ``max_agents`` (the least recently seen dropped first;
    an agent seen at 2.5 Hz keeps about 23 KB: 20,000 agents about 0.5 GB), expiring."""

    backend = "memory"

    def __init__(self, *, ttl_s: float, max_agents: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.max_agents = max_agents
        self._data: OrderedDict[str, tuple[float, AgentTrack]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def load(self, keys: list[str]) -> list[AgentTrack | None]:
        now = time.monotonic()
        out: list[AgentTrack | None] = []
        for key in keys:
            item = self._data.get(key)
            out.append(item[1] if item is not None and item[0] > now else None)
        return out

    async def save(self, tracks: dict[str, AgentTrack]) -> None:
        expires = time.monotonic() + self.ttl_s
        for key, track in tracks.items():
            self._data[key] = (expires, track)
            self._data.move_to_end(key)
        while len(self._data) > self.max_agents:
            self._data.popitem(last=False)

    async def close(self) -> None:
        self._data.clear()


class RedisTrackStore:
    """Tracks in Redis, one key per agent with the TTL as its expiry: replicas share them.

    A failure is a :class:`ServiceUnavailable` (the frame is refused, nothing half-kept):
    answering from a history other replicas cannot see would split the agent's track.
    """

    backend = "redis"

    def __init__(
        self, url: str, *, ttl_s: float, prefix: str = "trajops:track:", timeout_s: float = 0.5
    ) -> None:
        import redis.asyncio as aioredis

        self.ttl_s = ttl_s
        self.prefix = prefix
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def load(self, keys: list[str]) -> list[AgentTrack | None]:
        try:
            blobs = await self._client.mget([self.prefix + k for k in keys])
        except Exception as exc:
            raise _unavailable(exc) from None
        return [None if b is None else AgentTrack.from_bytes(b) for b in blobs]

    async def save(self, tracks: dict[str, AgentTrack]) -> None:
        ttl_ms = max(1, int(self.ttl_s * 1000))
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, track in tracks.items():
                    pipe.set(self.prefix + key, track.to_bytes(), px=ttl_ms)
                await pipe.execute()
        except Exception as exc:
            raise _unavailable(exc) from None

    async def close(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"track store (redis) unreachable, frame not taken (retry): {type(exc).__name__}"
    )


def create_track_store(*, redis_url: str | None, ttl_s: float) -> TrackStore:
    """Redis when a URL is given (replicas agree), else in process."""
    if redis_url:
        return RedisTrackStore(redis_url, ttl_s=ttl_s)
    return MemoryTrackStore(ttl_s=ttl_s)

"""The streaming use case behind ``POST /v1/tracks``: a frame of sightings in, forecasts out,
and the service's own earlier forecasts scored as their futures arrive.

One frame is handled in three steps, under a per-scene lock (frames of one scene are applied
in order in this process; across replicas a client sends a scene's frames in order):

1. load the tracks of the frame's agents and refuse the frame whole (409) if any sighting is
   not newer than its agent's last one; nothing has changed then;
2. add every sighting, scoring the forecasts it realises (a ``feedback`` row each, through
   the durable log, and the online metrics), and forecast the agents whose track covers the
   model's history, through :meth:`PredictionService.answer` (same model routing, experiment
   exposure, cache and prediction log as ``/v1/predict``);
3. keep the new forecasts on their tracks and save the tracks.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trajops.errors import ConflictError
from trajops.prediction.ports import TruthLog
from trajops.prediction.service import Answer, PredictionRequest, PredictionService
from trajops.prediction.tracks import AgentTrack, Pending, Realised, TrackConfig, TrackStore


@dataclass(frozen=True)
class Frame:
    """A validated frame: the sightings of one scene at one instant.

    Attributes:
        positions: ``(N, 2)`` float64, one row per agent of ``agent_ids``.
    """

    scene_id: str
    t: float
    agent_ids: list[str | int]
    positions: np.ndarray
    model: str | None = None


@dataclass(frozen=True)
class FrameAnswer:
    """What a frame produced.

    Attributes:
        answer: the forecast of the agents in ``forecast`` (None: no agent had enough track).
        forecast: indices (into the frame's agents) of the agents forecast.
        waiting: ``(index, seconds of track)`` of the agents not forecast yet.
        realised: earlier forecasts scored by this frame, with the frame index of their agent.
    """

    answer: Answer | None
    forecast: list[int]
    waiting: list[tuple[int, float]]
    realised: list[tuple[int, Realised]]


class TrackService:
    """Keeps agent tracks, forecasts from them and scores its forecasts as they come true.

    Args:
        service: the prediction service (model routing, cache, log, experiments).
        store: where tracks live between frames.
        truth: where scored forecasts go (the monitor's durable log).
        pseudonymise: ``(value, namespace=...) -> key``: tracks are keyed by pseudonyms, as
            the prediction log is, never by the ids clients send.
        on_realised: called with each scored forecast and its scene key (online metrics).
        config: track lengths, gaps and expiry.
    """

    def __init__(
        self,
        *,
        service: PredictionService,
        store: TrackStore,
        truth: TruthLog | None,
        pseudonymise: Callable[..., str],
        on_realised: Callable[[Realised, str], None] | None = None,
        config: TrackConfig | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.truth = truth
        self.pseudonymise = pseudonymise
        self.on_realised = on_realised
        self.config = config or TrackConfig()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, scene_key: str) -> asyncio.Lock:
        lock = self._locks.get(scene_key)
        if lock is None:
            lock = self._locks[scene_key] = asyncio.Lock()
        return lock

    async def frame(
        self,
        frame: Frame,
        *,
        key_id: str | None,
        request_id: str,
        started: float,
        may_pin: bool = True,
    ) -> FrameAnswer:
        """Apply one frame (see the module docstring).

        Raises:
            ConflictError: a sighting not newer than its agent's last one (nothing applied).
            ServiceUnavailable: the track store or every model is unreachable.
            PermissionDenied, ModelNotFoundError: as :meth:`PredictionService.answer`.
        """
        if frame.model is not None and not may_pin:
            self.service.check_exposed(frame.model)
        scene_key = self.pseudonymise(frame.scene_id, namespace="scene")
        agent_keys = [self.pseudonymise(str(a)) for a in frame.agent_ids]
        keys = [f"{scene_key}:{k}" for k in agent_keys]
        async with self._lock(scene_key):
            loaded = await self.store.load(keys)
            _check_order(frame, loaded)
            tracks = [t if t is not None else AgentTrack() for t in loaded]
            realised: list[tuple[int, Realised]] = []
            for i, (track, (x, y)) in enumerate(zip(tracks, frame.positions.tolist(), strict=True)):
                if track.last_t != frame.t:  # else a re-sent frame: the sighting is kept already
                    found = track.observe(frame.t, x, y, agent_keys[i], self.config)
                    realised += [(i, r) for r in found]
            if realised:
                self._record(realised, scene_key)
            try:
                answer, ready, waiting = await self._forecast(
                    frame,
                    tracks,
                    key_id=key_id,
                    request_id=request_id,
                    started=started,
                    may_pin=may_pin,
                )
            finally:  # the sightings are kept even when no forecast could be made
                await self.store.save(dict(zip(keys, tracks, strict=True)))
        return FrameAnswer(answer=answer, forecast=ready, waiting=waiting, realised=realised)

    async def _forecast(
        self,
        frame: Frame,
        tracks: list[AgentTrack],
        *,
        key_id: str | None,
        request_id: str,
        started: float,
        may_pin: bool,
    ) -> tuple[Answer | None, list[int], list[tuple[int, float]]]:
        """Forecast the agents whose track covers the model's history; keep the forecasts."""
        ready: list[int] = []
        waiting: list[tuple[int, float]] = []
        obs: list[np.ndarray] = []
        for i, track in enumerate(tracks):
            window = track.observed(self.config)
            if window is None:
                waiting.append((i, round(track.span_s(), 3)))
            else:
                ready.append(i)
                obs.append(window)
        if not ready:
            return None, ready, waiting
        answer = await self.service.answer(
            PredictionRequest(
                agent_ids=[frame.agent_ids[i] for i in ready],
                obs=np.stack(obs),
                scene_id=frame.scene_id,
                model=frame.model,
                observed_at=frame.t if plausible_time(frame.t) else None,
            ),
            key_id=key_id,
            request_id=request_id,
            started=started,
            may_pin=may_pin,
        )
        result = answer.result
        preds = np.asarray(result.predictions, dtype=np.float64)  # (N, T_pred, 2) or (N, K, ...)
        if preds.ndim == 4:
            preds = preds[:, 0]
        for j, i in enumerate(ready):
            forecast = Pending(
                frame.t,
                request_id,
                result.model.version,
                result.variant,
                preds[j].round(4).tolist(),
            )
            tracks[i].expect(forecast, self.config)
        return answer, ready, waiting

    def _record(self, realised: Sequence[tuple[int, Realised]], scene_key: str) -> None:
        if self.truth is not None:
            self.truth.log_realised([r for _, r in realised])
        if self.on_realised is not None:
            for _, r in realised:
                self.on_realised(r, scene_key)


EARLIEST_S = 946_684_800.0
"""2000-01-01 in Unix seconds: a frame time before it is a clock of another origin."""


def plausible_time(t: float) -> bool:
    """Whether a frame's ``t`` reads as Unix seconds (from 2000 to a day ahead of now): then
    it is logged as when the forecast's input was observed (the production loop orders and
    splits its data by it, so a replay of recorded tracks keeps their timing)."""
    return EARLIEST_S <= t <= time.time() + 86_400.0


def _check_order(frame: Frame, tracks: Sequence[AgentTrack | None]) -> None:
    """Refuse a sighting older than its agent's last one, or at the same instant elsewhere
    (the same sighting again is a re-sent frame, and is taken)."""
    for i, track in enumerate(tracks):
        if track is None or not track.points:
            continue
        last, x, y = track.points[-1]
        same = frame.t == last and np.allclose(frame.positions[i], (x, y), rtol=0, atol=1e-9)
        if frame.t < last or (frame.t == last and not same):
            raise ConflictError(
                f"frame at t={frame.t} is not after agent {frame.agent_ids[i]!r}'s last "
                f"sighting at t={last}: frames of a scene must arrive in time order",
                details=[{"loc": ["body", "t"], "msg": "not after the agent's last sighting"}],
            )

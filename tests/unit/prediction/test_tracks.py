"""Agent tracks: resampling irregular sightings, gaps never bridged, forecasts scored once
their horizon is realised, bounded state, and the store round trips."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from trajops.prediction.tracks import (
    AgentTrack,
    MemoryTrackStore,
    Pending,
    TrackConfig,
)

CONFIG = TrackConfig()


def walk(track: AgentTrack, times: np.ndarray, speed: float = 1.0) -> list[object]:
    """Sightings of an agent walking along x at ``speed`` m/s; returns what they realised."""
    out: list[object] = []
    for t in times:
        out += track.observe(float(t), speed * float(t), 0.0, "a", CONFIG)
    return out


def test_no_forecast_input_until_the_track_covers_the_history() -> None:
    track = AgentTrack()
    walk(track, np.arange(7) * 0.4)  # 2.4 s: one step short
    assert track.observed(CONFIG) is None
    walk(track, np.array([2.8]))
    obs = track.observed(CONFIG)
    assert obs is not None and obs.shape == (8, 2)
    np.testing.assert_allclose(obs[:, 0], np.arange(8) * 0.4, atol=1e-9)


def test_irregular_sightings_are_resampled_at_the_model_step() -> None:
    track = AgentTrack()
    times = np.array([0.0, 0.13, 0.5, 0.71, 1.3, 1.45, 2.0, 2.2, 2.66, 3.1])  # ~4.4 Hz, jittery
    walk(track, times, speed=1.5)
    obs = track.observed(CONFIG)
    assert obs is not None
    expected = 1.5 * (3.1 - 0.4 * np.arange(7, -1, -1))
    np.testing.assert_allclose(obs[:, 0], expected, atol=1e-9)  # linear motion: exact


def test_a_gap_restarts_the_track_and_drops_forecasts_across_it() -> None:
    track = AgentTrack()
    walk(track, np.arange(8) * 0.4)
    track.expect(Pending(2.8, "r1", "1", "default", [[0.0, 0.0]] * 12), CONFIG)
    realised = walk(track, np.array([2.8 + CONFIG.max_gap_s + 0.1]))
    assert realised == [] and track.pending == [] and len(track.points) == 1
    assert track.observed(CONFIG) is None


def test_a_forecast_is_scored_once_its_horizon_is_realised() -> None:
    track = AgentTrack()
    walk(track, np.arange(8) * 0.4)
    perfect = [[1.0 * (2.8 + 0.4 * k), 0.0] for k in range(1, 13)]
    off = [[p[0], 1.0] for p in perfect]  # 1 m to the side at every step
    track.expect(Pending(2.8, "r1", "1", "default", perfect), CONFIG)
    track.expect(Pending(2.8, "r1", "1", "default", off), CONFIG)  # same instant: not kept
    assert len(track.pending) == 1
    assert walk(track, 2.8 + 0.4 * np.arange(1, 12)) == []  # 4.4 s: not yet
    (scored,) = walk(track, np.array([2.8 + 4.8]))
    assert scored.forecast.request_id == "r1" and scored.agent_key == "a"  # type: ignore[attr-defined]
    assert scored.ade == pytest.approx(0.0, abs=1e-9)  # type: ignore[attr-defined]
    assert scored.truth.shape == (12, 2)  # type: ignore[attr-defined]
    assert track.pending == []


def test_the_error_is_measured_at_the_forecast_steps() -> None:
    track = AgentTrack()
    walk(track, np.arange(8) * 0.4)
    off = [[1.0 * (2.8 + 0.4 * k), 0.5 * k / 12] for k in range(1, 13)]
    track.expect(Pending(2.8, "r2", "1", "v", off), CONFIG)
    (scored,) = walk(track, 2.8 + 0.3 * np.arange(1, 18))  # sightings off the 0.4 s grid
    assert scored.fde == pytest.approx(0.5, abs=1e-9)  # type: ignore[attr-defined]
    assert scored.ade == pytest.approx(np.mean(0.5 * np.arange(1, 13) / 12), abs=1e-9)  # type: ignore[attr-defined]


def test_state_stays_bounded() -> None:
    track = AgentTrack()
    walk(track, np.arange(600) * 0.05)  # 30 s at 20 Hz
    assert track.span_s() <= CONFIG.history_s + 2 * CONFIG.step_s
    small = TrackConfig(max_points=16, max_pending=3)
    for k in range(10):
        track.expect(Pending(100.0 + k, f"r{k}", "1", "d", [[0.0, 0.0]] * 12), small)
    assert [p.request_id for p in track.pending] == ["r7", "r8", "r9"]
    for k in range(100):
        track.observe(30.0 + 0.01 * k, 0.0, 0.0, "a", small)
    assert len(track.points) <= 16


def test_bytes_round_trip() -> None:
    track = AgentTrack()
    walk(track, np.arange(9) * 0.4)
    track.expect(Pending(3.2, "r", "4", "arm-b", [[1.0, 2.0]] * 12), CONFIG)
    back = AgentTrack.from_bytes(track.to_bytes())
    assert back == track
    assert back.span_s() == pytest.approx(3.2) and len(back.pending) == 1


def test_memory_store_expires_and_is_bounded() -> None:
    async def scenario() -> None:
        store = MemoryTrackStore(ttl_s=0.05, max_agents=2)
        a, b, c = AgentTrack(), AgentTrack(), AgentTrack()
        await store.save({"a": a, "b": b})
        assert await store.load(["a", "b", "x"]) == [a, b, None]
        await store.save({"c": c})  # over the bound: the least recently seen goes
        assert await store.load(["a", "c"]) == [None, c]
        await asyncio.sleep(0.08)
        assert await store.load(["c"]) == [None]

    asyncio.run(scenario())

"""Drift of one scene against its own served past, on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from trajops.data import WindowConfig, make_windows
from trajops.data.simulator import SimulationConfig, simulate
from trajops.errors import NotEnoughData
from trajops.monitoring.alerts import AlertManager
from trajops.monitoring.drift_job import list_reports
from trajops.monitoring.scene_drift import run_scene_drift, scene_inputs
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import PredictionRecord

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
WINDOW = 300
CALM, FASTER, SPARSE = "calm-scene", "faster-scene", "sparse-scene"
# Simulator seeds of the two scenes. Against their own first 1,200 inputs, the latest 300 of
# "calm" score at most 0.54x their thresholds, and those of "faster" (1.2x) at least 2.4x on
# two features (of seeds 0-9, 9 stayed quiet and 7 were caught: the detector's spread).
SEEDS = {CALM: 5, FASTER: 8}


def _served(scene: str, seed: int, *, n_agents: int = 20, n_steps: int = 300) -> list[dict]:
    """One scene's served inputs in time order: the agents at one step form one request.

    The simulator places every agent at once and its first steps are a transient, so the
    camera "comes online" after 50 steps. In "faster", the inputs after the first 2,400 are
    walked 1.2x faster (each agent's displacement from its first observed position scaled).
    """
    tracks = simulate(
        SimulationConfig.pedestrians(n_agents=n_agents, n_steps=n_steps, n_scenes=1, seed=seed)
    )
    w = make_windows(tracks, WindowConfig(t_pred=0))
    order = np.lexsort((w.agent_id, w.start_frame))
    order = order[w.start_frame[order] >= 500]
    obs = w.obs[order]  # (N, T_obs, 2)
    if scene == FASTER:
        obs[2400:] = obs[2400:, :1] + 1.2 * (obs[2400:] - obs[2400:, :1])
    return [
        {
            "request_id": f"{scene}@{frame}",
            "created_at": START + timedelta(seconds=0.04 * frame),
            "model_name": "m",
            "model_version": "1",
            "agent_key": f"{scene}-{agent}",
            "scene_key": scene,
            "inputs": o.tolist(),
            "outputs": [[0.0, 0.0]] * 12,
            "step_s": 0.4,
            "latency_ms": 1.0,
        }
        for o, frame, agent in zip(obs, w.start_frame[order], w.agent_id[order], strict=True)
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two scenes served at the same time (their rows interleave), and a scene with 150."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('scene-drift') / 'store.db'}")
    rows = [r for scene, seed in SEEDS.items() for r in _served(scene, seed)]
    rows += _served(SPARSE, 3, n_agents=3, n_steps=120)[:150]
    rows.sort(key=lambda r: r["created_at"])  # stable: each scene keeps its own order
    with store.session() as session:
        session.add_all(PredictionRecord(**r) for r in rows)
    return store


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        drift_window_size=WINDOW,
        drift_min_inputs=100,
        drift_persistence_k=2,
        drift_persistence_m=3,
    )


def test_a_scene_drifts_against_its_own_past_and_a_steady_one_does_not(
    tmp_path: Path, store: Store
) -> None:
    settings = _settings(tmp_path)
    alerts = AlertManager(store, [], cooldown_s=0)
    fast = [run_scene_drift(settings, store, scene_key=FASTER, alerts=alerts) for _ in range(2)]
    assert fast[0]["dataset_drift"] is True
    assert {"mean_speed", "path_length"} <= set(fast[0]["drifted_features"])
    assert (fast[0]["n_reference"], fast[0]["n_current"]) == (4 * WINDOW, WINDOW)
    assert fast[1]["alert"] is True and fast[1]["alert_started"] is True
    assert fast[1]["scene_key"] == FASTER and fast[1]["model_version"] is None

    # Persistence is per scene: two drifted runs of another scene do not count here.
    calm = run_scene_drift(settings, store, scene_key=CALM, alerts=alerts)
    assert calm["dataset_drift"] is False and calm["drifted_features"] == []
    assert calm["alert"] is False

    firing = alerts.list(status="firing")
    assert [(a["rule"], a["key"]) for a in firing] == [("drift", f"scene:{FASTER}")]
    listed = list_reports(store)
    assert [(r["scene_key"], r["dataset_drift"]) for r in listed[:3]] == [
        (CALM, False),
        (FASTER, True),
        (FASTER, True),
    ]
    html = Path(calm["report_path"])
    assert html.parent.parent == (tmp_path / "drift" / f"scene-{CALM}").resolve()
    assert html.read_text().lstrip().lower().startswith("<!doctype html")


def test_the_reference_can_end_at_a_time(tmp_path: Path, store: Store) -> None:
    until = START + timedelta(seconds=0.04 * 1500)  # frames before 1500: 100 steps
    ref, everything = scene_inputs(store, CALM, until=until), scene_inputs(store, CALM)
    assert np.array_equal(ref.id, everything.id[: len(ref.id)])
    frames = [int(r.split("@")[1]) for r in everything.request_id]
    assert frames[len(ref.id) - 1] < 1500 <= frames[len(ref.id)]
    summary = run_scene_drift(_settings(tmp_path), store, scene_key=CALM, reference_until=until)
    assert summary["n_reference"] == len(ref.id) and summary["n_current"] == WINDOW
    assert summary["reference_until"] == until.isoformat()
    latest = scene_inputs(store, CALM, limit=5, newest=True)
    assert np.array_equal(latest.id, everything.id[-5:])  # oldest first, like the reference


def test_too_little_of_a_scene_is_a_clear_error(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    stored = len(list_reports(store, limit=500))
    with pytest.raises(NotEnoughData, match="the window has 0 < 100 inputs"):
        run_scene_drift(settings, store, scene_key="never-served")
    # 150 inputs: the latest 150 are the reference's own.
    with pytest.raises(NotEnoughData, match="include 150 of the reference's 150") as sparse:
        run_scene_drift(settings, store, scene_key=SPARSE)
    assert "a run needs 1500" in sparse.value.message  # 4 windows of reference, then 1
    n_calm = len(scene_inputs(store, CALM).id)
    with pytest.raises(NotEnoughData, match=f"the scene has {n_calm} inputs"):
        run_scene_drift(settings, store, scene_key=CALM, reference_size=n_calm - 100)
    with pytest.raises(NotEnoughData, match="reference has 200 < 600 inputs"):
        run_scene_drift(settings, store, scene_key=CALM, reference_size=200)
    assert len(list_reports(store, limit=500)) == stored  # nothing stored for a refused run

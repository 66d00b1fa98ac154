"""A drift run logged to MLflow keeps its artifacts under ``TRAJOPS_HOME``, whatever the folder
the job runs in (MLflow's own default would be ``./mlruns`` there)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from trajops.data import WindowConfig, make_windows
from trajops.data.simulator import SimulationConfig, simulate
from trajops.monitoring.drift_job import run_drift
from trajops.monitoring.reference import build_reference
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import PredictionRecord

SERVED = 60


def test_a_drift_run_from_another_folder_logs_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracks = simulate(SimulationConfig.pedestrians(n_agents=20, n_steps=200, n_scenes=2, seed=4))
    reference = build_reference(tracks, window_size=50, seed=0)
    settings = Settings(home=tmp_path / "home", drift_window_size=50, drift_min_inputs=10)
    settings.ensure_home()
    store = Store(settings.resolved_database_url)
    windows = make_windows(tracks, WindowConfig(t_pred=0))
    now = datetime.now(UTC)
    with store.session() as s:
        s.add_all(
            PredictionRecord(
                request_id=f"r{i}",
                created_at=now,
                model_name="m",
                model_version="1",
                variant="default",
                agent_key=f"a{i}",
                scene_key=None,
                inputs=windows.obs[i].tolist(),
                outputs=[[0.0, 0.0]] * 12,
                step_s=0.4,
                latency_ms=1.0,
            )
            for i in range(SERVED)
        )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)

    summary = run_drift(settings, store, reference, model_version="1")

    assert list(elsewhere.iterdir()) == [], "nothing in the current folder (no ./mlruns)"
    run = MlflowClient(settings.resolved_tracking_uri).get_run(summary["mlflow_run_id"])
    assert run.info.artifact_uri.startswith(settings.artifact_root.as_uri())
    assert run.data.tags["trajops.kind"] == "drift"
    logged = {p.name for p in settings.artifact_root.rglob("*") if p.is_file()}
    assert {"report.html", "summary.json"} <= logged
    store.dispose()

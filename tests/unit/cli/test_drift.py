"""``trajops drift run --scene SCENE_ID``: a scene against its own first served inputs, on the
embedded store of a ``TRAJOPS_HOME`` of the test's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests._support.cli import CliRunner
from trajops.data import WindowConfig, make_windows
from trajops.data.simulator import SimulationConfig, simulate
from trajops.privacy import Pseudonymiser, load_or_create_key
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import PredictionRecord

SCENE = "crossing-3"


@pytest.fixture
def home(home: Path) -> Path:
    """The CLI tests' own home, with one scene's served inputs logged under its pseudonym."""
    settings = Settings(home=home)
    settings.ensure_home()
    key = Pseudonymiser(load_or_create_key(settings))(SCENE, namespace="scene")
    tracks = simulate(SimulationConfig.pedestrians(n_agents=10, n_steps=150, n_scenes=1, seed=2))
    w = make_windows(tracks, WindowConfig(t_pred=0))
    order = np.lexsort((w.agent_id, w.start_frame))
    start = datetime(2024, 5, 1, tzinfo=UTC)
    store = Store(settings.resolved_database_url)
    with store.session() as session:
        session.add_all(
            PredictionRecord(
                request_id=f"r{frame}",
                created_at=start + timedelta(seconds=0.04 * frame),
                model_name="m",
                model_version="1",
                agent_key=f"a{agent}",
                scene_key=key,
                inputs=w.obs[i].tolist(),
                outputs=[[0.0, 0.0]] * 12,
                step_s=0.4,
                latency_ms=1.0,
            )
            for i, frame, agent in zip(order, w.start_frame[order], w.agent_id[order], strict=True)
        )
    store.dispose()
    return home


def test_a_scene_run_stores_its_report(cli: CliRunner, home: Path) -> None:
    args = ("drift", "run", "--scene", SCENE, "--window", "100", "--reference-size", "400")
    run = cli(*args, "--json")
    assert run.code == 0, run.stderr[-3000:]
    summary = run.json()
    key = Pseudonymiser(load_or_create_key(Settings(home=home)))(SCENE, namespace="scene")
    assert summary["scene_key"] == key and SCENE not in run.stdout
    assert (summary["n_reference"], summary["n_current"]) == (400, 100)
    assert isinstance(summary["dataset_drift"], bool) and summary["id"] == 1
    assert Path(summary["report_path"]).is_relative_to((home / "drift" / f"scene-{key}").resolve())

    table = cli(*args)
    assert table.code == 0, table.stderr[-3000:]
    text = " ".join(table.stdout.split())  # the table wraps to the console's width
    assert f"Drift of scene '{SCENE}' vs its first 400 inputs (100 inputs)" in text
    assert "persistent alert:" in text


def test_scene_options_and_too_little_data(cli: CliRunner, home: Path) -> None:
    alone = cli("drift", "run", "--reference-size", "400")
    assert alone.code == 2 and "need --scene" in alone.stderr
    since = cli("drift", "run", "--scene", SCENE, "--since", "1h")
    assert since.code == 2 and "drop --since" in since.stderr
    unknown = cli("drift", "run", "--scene", "nowhere", "--window", "100", "--json")
    assert unknown.code == 2
    assert "the window has 0 < 100 inputs" in unknown.json()["error"]["message"]
    # Default sizes: 4 windows of 500 and a window of 500 are more than this scene served.
    short = cli("drift", "run", "--scene", SCENE, "--json")
    assert short.code == 2 and "a run needs 2500" in short.json()["error"]["message"]

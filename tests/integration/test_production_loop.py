"""The loop on production data, end to end through HTTP on a real server: simulated crowds
streamed frame by frame to ``/v1/tracks``, the service scoring its own forecasts, ``trajops
data harvest`` writing them as a dataset, an erased subject absent from a later harvest, and
``trajops train --data HARVEST`` training and registering on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from tests._support.api_keys import issue_key
from tests._support.cli import CliRunner, cli
from tests._support.registry import build_registry
from tests._support.waiting import eventually
from trajops.data.harvest import read_harvest
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import make_windows
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import Feedback

__all__ = ["cli"]

T0 = 1_765_000_000.0


@dataclass(frozen=True)
class Streamed:
    settings: Settings
    scored: int
    agent_ids: list[str]


def stream(http: httpx.Client, headers: dict[str, str], tracks: pd.DataFrame) -> int:
    """Send every frame of every scene in time order; return the forecasts scored."""
    scored = 0
    for (scene, frame), part in tracks.groupby(["scene", "frame"], sort=True):
        body = {
            "scene_id": f"site-{scene}",
            "t": T0 + 0.04 * int(frame),  # frame ids step by 10 per 0.4 s
            "agents": [
                {"agent_id": f"{scene}-{a}", "position": [x, y]}
                for a, x, y in part[["agent_id", "x", "y"]].itertuples(index=False)
            ],
        }
        r = http.post("/v1/tracks", json=body, headers=headers)
        assert r.status_code == 200, r.text
        scored += len(r.json()["scored"])
    return scored


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Streamed]:
    root = tmp_path_factory.mktemp("loop")
    reg = build_registry(root / "registry")
    settings = Settings(
        home=root / "home",
        tracking_uri=reg.uri,
        log_flush_interval_s=0.05,
        rate_limit_burst=100_000,  # a tracker sends a frame per 0.4 s per scene, here at once
    )
    _, token = issue_key(settings, scopes="predict")
    tracks = simulate(SimulationConfig.pedestrians(n_agents=12, n_steps=70, n_scenes=2, seed=3))
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        scored = stream(http, {"X-API-Key": token}, tracks)
        store = Store(settings.resolved_database_url)
        try:
            eventually(lambda: count(store), lambda n: n >= scored, timeout_s=20)
            assert count(store) == scored
        finally:
            store.dispose()
    sizes = tracks.groupby(["scene", "agent_id"]).size().sort_values(ascending=False)
    ids = [f"{s}-{a}" for s, a in sizes.index]  # the longest track first
    yield Streamed(settings, scored, ids)


def count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(Feedback)) or 0)


@pytest.fixture
def loop_env(streamed: Streamed, monkeypatch: pytest.MonkeyPatch) -> Streamed:
    monkeypatch.setenv("TRAJOPS_HOME", str(streamed.settings.home))
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", str(streamed.settings.tracking_uri))
    return streamed


def test_harvest_erasure_and_training(loop_env: Streamed, cli: CliRunner, tmp_path: Path) -> None:
    assert loop_env.scored > 300
    first = cli("data", "harvest", "--output", str(tmp_path / "h1"), "--json")
    assert first.code == 0, first.stderr
    manifest = first.json()
    assert manifest["windows"] == loop_env.scored  # every scored forecast is one window
    assert len(manifest["sites"]) == 2 and manifest["fingerprint"]
    harvested = read_harvest(tmp_path / "h1")
    assert len(make_windows(harvested.tracks)) == loop_env.scored
    raw = set(loop_env.agent_ids)
    assert not raw & set(harvested.tracks["agent_id"])  # pseudonyms only
    assert not any("site-" in s for s in harvested.tracks["site"])

    one_scene = cli(
        "data", "harvest", "--output", str(tmp_path / "h0"), "--scene", "site-sim-000", "--json"
    )
    assert one_scene.code == 0 and len(one_scene.json()["sites"]) == 1
    assert 0 < one_scene.json()["windows"] < loop_env.scored

    subject = loop_env.agent_ids[0]  # walked longest: has scored forecasts
    erased = cli("privacy", "erase", "--subject", subject, "--json")
    assert erased.code == 0, erased.stderr
    assert erased.json()["feedback"] > 0
    second = cli("data", "harvest", "--output", str(tmp_path / "h2"), "--json")
    assert second.code == 0
    later = read_harvest(tmp_path / "h2")
    gone = set(harvested.tracks["agent_id"]) - set(later.tracks["agent_id"])
    assert len(gone) == 1  # the erased subject, and only it, never comes back
    assert second.json()["windows"] == loop_env.scored - erased.json()["feedback"]

    trained = cli(
        "train", "--model", "linear", "--data", str(tmp_path / "h2"), "--register", "--json"
    )
    assert trained.code == 0, trained.stdout + trained.stderr
    (run,) = trained.json()["runs"]
    assert run["version"] is not None and run["metrics"]["test_ade"] > 0


def test_harvest_refuses_to_overwrite_other_data(
    loop_env: Streamed, cli: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    r = cli("data", "harvest", "--output", str(tmp_path / "notes"))
    assert r.code != 0 and "not a harvest folder" in (r.stdout + r.stderr)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    bad = cli("data", "harvest", "--output", str(tmp_path / "x"), "--since", "yesterday")
    assert bad.code != 0 and "since" in (bad.stdout + bad.stderr)

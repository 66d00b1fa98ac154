"""``POST /v1/tracks`` on a real server and SQLite store: frames in, forecasts out once a
track covers the history, the service's own forecasts scored as the agents walk on (feedback
rows, ``/v1/monitoring/performance``, Prometheus), ordering, re-sent frames and bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import RegistryInfo
from tests._support.waiting import eventually
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import Feedback, PredictionRecord

SCENE = "crossing-Zt9"
T0 = 1_765_000_000.0  # Unix time, as a tracker would send


@dataclass(frozen=True)
class Env:
    http: httpx.Client
    user: dict[str, str]
    admin: dict[str, str]
    settings: Settings


@pytest.fixture(scope="module")
def env(registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = make_settings(
        registry,
        tmp_path_factory.mktemp("tracks-home"),
        log_flush_interval_s=0.05,
        rate_limit_burst=10_000,
        max_agents=50,
    )
    _, admin = issue_key(settings, scopes="admin")
    _, user = issue_key(settings, scopes="predict")
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Env(http, {"X-API-Key": user}, {"X-API-Key": admin}, settings)


def frame(
    t: float, agents: dict[str, tuple[float, float]], scene: str = SCENE
) -> dict[str, object]:
    return {
        "scene_id": scene,
        "t": T0 + t,
        "agents": [{"agent_id": a, "position": list(p)} for a, p in agents.items()],
    }


def test_stream_forecasts_and_scores_itself(env: Env) -> None:
    """Two pedestrians walk straight (the CV champion is exact for them), a third turns."""
    answers = []
    for k in range(24):
        t = 0.4 * k + (0.03 if k % 3 == 1 else 0.0)  # irregular frame times
        agents = {
            "ped-a": (1.2 * t, 0.0),
            "ped-b": (5.0, -0.8 * t),
            "ped-c": (1.0 * t, 0.0 if t < 4.0 else 0.6 * (t - 4.0)),
        }
        if k >= 12:
            agents["late"] = (0.0, 10.0 + t)  # joins later: not forecast until 2.8 s of track
        r = env.http.post("/v1/tracks", json=frame(t, agents), headers=env.user)
        assert r.status_code == 200, r.text
        answers.append(r.json())
    first = answers[0]
    assert first["predictions"] == [] and first["model"] is None
    assert {w["agent_id"] for w in first["waiting"]} == {"ped-a", "ped-b", "ped-c"}
    ready = answers[7]  # 2.8 s of track: the model's 8 observed steps
    assert {p["agent_id"] for p in ready["predictions"]} == {"ped-a", "ped-b", "ped-c"}
    assert ready["model"]["version"] == "1" and len(ready["predictions"][0]["positions"]) == 12
    a = next(p for p in ready["predictions"] if p["agent_id"] == "ped-a")
    assert a["positions"][-1][0] == pytest.approx(1.2 * (0.4 * 7 + 4.8), abs=0.05)
    scored_at = next(i for i, body in enumerate(answers) if body["scored"])
    assert scored_at == 19  # 2.8 s + 4.8 s: the first forecasts' horizon realised
    scored = {s["agent_id"]: s for s in answers[19]["scored"]}
    assert set(scored) == {"ped-a", "ped-b", "ped-c"}
    assert scored["ped-a"]["request_id"] == ready["request_id"]
    assert scored["ped-a"]["ade"] < 0.05 and scored["ped-b"]["ade"] < 0.05
    assert scored["ped-c"]["fde"] > 1.0  # it turned: constant velocity missed
    assert {w["agent_id"] for w in answers[13]["waiting"]} == {"late"}

    store = Store(env.settings.resolved_database_url)
    try:
        n_scored = sum(len(body["scored"]) for body in answers)
        rows = eventually(
            lambda: store_count(store, Feedback), lambda n: n >= n_scored, timeout_s=10
        )
        assert rows == n_scored
        with store.session() as session:
            fb = session.scalars(select(Feedback).where(Feedback.n_steps == 12)).first()
            assert fb is not None and fb.variant == "default" and len(fb.positions) == 12
            pred = session.scalars(
                select(PredictionRecord).where(
                    PredictionRecord.request_id == fb.request_id,
                    PredictionRecord.agent_key == fb.agent_key,
                )
            ).one()  # each automatic truth pairs with the forecast it scored
            assert pred.scene_key is not None and SCENE not in pred.scene_key
            assert "ped-" not in fb.agent_key  # pseudonyms only
    finally:
        store.dispose()
    perf = env.http.get("/v1/monitoring/performance", headers=env.admin).json()
    assert sum(row["n"] for row in perf["versions"]) >= n_scored
    metrics = env.http.get("/metrics", headers=env.admin).text
    count = re.search(
        r'^trajops_online_ade_meters_count\{model_version="1",variant="default"\} (\S+)$',
        metrics,
        re.M,
    )
    assert count and float(count[1]) >= n_scored


def store_count(store: Store, model: type[Feedback]) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_frames_must_arrive_in_time_order_and_a_resent_frame_is_taken(env: Env) -> None:
    scene = "order-scene"
    for k in range(9):
        body = frame(0.4 * k, {"o1": (0.5 * k, 0.0)}, scene)
        assert env.http.post("/v1/tracks", json=body, headers=env.user).status_code == 200
    again = env.http.post("/v1/tracks", json=body, headers=env.user)
    assert again.status_code == 200, again.text  # a retry of the last frame
    assert len(again.json()["predictions"]) == 1
    older = env.http.post(
        "/v1/tracks", json=frame(0.4 * 7, {"o1": (9.0, 9.0)}, scene), headers=env.user
    )
    assert older.status_code == 409, older.text
    assert "time order" in older.json()["error"]["message"]
    moved = env.http.post(
        "/v1/tracks", json=frame(0.4 * 8, {"o1": (9.0, 9.0)}, scene), headers=env.user
    )
    assert moved.status_code == 409  # the same instant, elsewhere: not a retry


def test_a_gap_restarts_the_track(env: Env) -> None:
    scene = "gap-scene"
    for k in range(9):
        env.http.post(
            "/v1/tracks", json=frame(0.4 * k, {"g": (0.4 * k, 0.0)}, scene), headers=env.user
        )
    r = env.http.post(
        "/v1/tracks", json=frame(0.4 * 8 + 5.0, {"g": (9.0, 0.0)}, scene), headers=env.user
    )
    assert r.status_code == 200
    assert r.json()["predictions"] == [] and r.json()["waiting"][0]["history_s"] == 0.0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"t": 1.0, "agents": [{"agent_id": "a", "position": [0, 0]}]}, "scene_id"),
        ({"scene_id": "s", "t": "soon", "agents": [{"agent_id": "a", "position": [0, 0]}]}, "t"),
        ({"scene_id": "s", "t": 1.0, "agents": []}, "agents"),
        ({"scene_id": "s", "t": 1.0, "agents": [{"agent_id": "a", "position": [0]}]}, "position"),
        (
            {
                "scene_id": "s",
                "t": 1.0,
                "agents": [
                    {"agent_id": "a", "position": [0, 0]},
                    {"agent_id": "a", "position": [1, 1]},
                ],
            },
            "agent_id",
        ),
        (
            {"scene_id": "s", "t": 1.0, "agents": [{"agent_id": "a", "position": [1e9, 0]}]},
            "position",
        ),
    ],
)
def test_bad_frames_are_422_naming_the_field(env: Env, body: dict[str, object], where: str) -> None:
    r = env.http.post("/v1/tracks", json=body, headers=env.user)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert any(where in map(str, d["loc"]) for d in error["details"]), error


def test_tracks_need_the_predict_scope(env: Env) -> None:
    _, reader = issue_key(env.settings, scopes="read")
    body = frame(0.0, {"x": (0.0, 0.0)}, "scope-scene")
    r = env.http.post("/v1/tracks", json=body, headers={"X-API-Key": reader})
    assert r.status_code == 403

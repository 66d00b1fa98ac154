"""Monitoring through the API on a real server and SQLite store: prediction log, feedback
scoring, online vs offline accuracy, drift runs, alerts, audit rows, no raw identifiers."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import mlflow
import numpy as np
import pytest
from sqlalchemy import select

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import MODEL, RegistryInfo, build_registry
from tests._support.waiting import eventually, post_until_logged
from trajops.data import WindowConfig, make_windows
from trajops.data.simulator import SimulationConfig, simulate
from trajops.monitoring.reference import build_reference, write_reference
from trajops.security.audit import verify_chain
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import AuditEntry, Feedback, PredictionRecord

OFFLINE_ADE = 0.1
SECRET_IDS = [f"subject-Qx7-{i:02d}" for i in range(10)]
SECRET_SCENE = "scene-Wv3-private"


@dataclass(frozen=True)
class Env:
    http: httpx.Client
    admin: dict[str, str]
    user: dict[str, str]
    user_key_id: str
    settings: Settings
    windows: np.ndarray  # (M, T_obs, 2) simulated observations to send


@pytest.fixture(scope="module")
def reg_with_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[RegistryInfo, np.ndarray]:
    """One CV version whose run carries a drift reference and whose test ADE is known."""
    root = tmp_path_factory.mktemp("monitoring-registry")
    reg = build_registry(root, versions=1)
    tracks = simulate(SimulationConfig.pedestrians(n_agents=20, n_steps=120, n_scenes=2, seed=1))
    folder = root / "reference"
    write_reference(build_reference(tracks, window_size=100, seed=0), folder)
    run_id = reg.client.get_model_version(MODEL, "1").run_id
    reg.client.log_artifacts(run_id, str(folder))
    reg.client.set_model_version_tag(MODEL, "1", "metric.test_ade", str(OFFLINE_ADE))
    reg.client.set_model_version_tag(MODEL, "1", "metric.test_fde", "0.2")
    obs = make_windows(tracks, WindowConfig(t_pred=0)).obs  # (M, T_obs, 2)
    return reg, obs


@pytest.fixture(scope="module")
def env(
    reg_with_reference: tuple[RegistryInfo, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    reg, obs = reg_with_reference
    settings = make_settings(
        reg,
        tmp_path_factory.mktemp("monitoring-home"),
        log_flush_interval_s=0.05,
        drift_min_inputs=100,
        alert_interval_s=0.3,
        alert_p99_latency_ms=0.001,  # any traffic breaks it: the latency rule must fire
        alert_min_feedback=1,
        rate_limit_burst=10_000,
    )
    _, admin = issue_key(settings, scopes="admin")
    user_id, user = issue_key(settings, scopes="predict,feedback")
    app = create_app(settings, options=AppOptions(poll=False))
    previous = mlflow.get_tracking_uri()
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield Env(
                http, {"X-API-Key": admin}, {"X-API-Key": user}, user_id, settings, np.asarray(obs)
            )
    finally:  # drift runs log to MLflow, which sets its process-wide tracking URI
        mlflow.set_tracking_uri(previous)


def predict_body(obs: np.ndarray, ids: list[str]) -> dict[str, object]:
    agents = [
        {"agent_id": a, "positions": o.round(3).tolist()} for a, o in zip(ids, obs, strict=True)
    ]
    return {"scene_id": SECRET_SCENE, "agents": agents}


def feedback_until_logged(env: Env, body: dict[str, object]) -> httpx.Response:
    """POST feedback, retrying while the prediction is still in the write queue (404)."""
    return post_until_logged(env.http, "/v1/feedback", json=body, headers=env.user)


def test_drift_run_on_served_inputs(env: Env) -> None:
    too_few = env.http.post("/v1/monitoring/drift/run?window=10", headers=env.admin)
    assert too_few.status_code == 422, too_few.text
    assert "not enough served inputs" in too_few.json()["error"]["message"]
    for k in range(16):  # 160 served inputs, 10 agents a request
        chunk = env.windows[k * 10 : k * 10 + 10]
        r = env.http.post(
            "/v1/predict",
            json=predict_body(chunk, [f"d{k}-{i}" for i in range(10)]),
            headers=env.user,
        )
        assert r.status_code == 200, r.text
    run = eventually(  # the served inputs reach the store through the log writer
        lambda: env.http.post("/v1/monitoring/drift/run?window=150", headers=env.admin),
        lambda r: r.status_code != 422,
    )
    assert run.status_code == 200, run.text
    summary = run.json()
    assert summary["n_current"] == 150 and summary["model_version"] == "1"
    assert isinstance(summary["dataset_drift"], bool)
    listed = env.http.get("/v1/monitoring/drift", headers=env.admin).json()["reports"]
    assert listed[0]["id"] == summary["id"]
    html = env.http.get(f"/v1/monitoring/drift/{summary['id']}/report", headers=env.admin)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert len(html.content) > 1000
    missing = env.http.get("/v1/monitoring/drift/9999/report", headers=env.admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    metrics = env.http.get("/metrics", headers=env.admin).text
    skipped = re.search(r'^trajops_drift_runs_total\{result="skipped"\} (\S+)$', metrics, re.M)
    assert skipped and float(skipped[1]) >= 1  # the first run, and any while rows were queued


def test_drift_run_of_one_scene(env: Env) -> None:
    """The scene id is pseudonymised as the log does: this scene's rows are found."""
    unknown = env.http.post("/v1/monitoring/drift/run?scene=nowhere", headers=env.admin)
    assert unknown.status_code == 422 and "the window has 0 <" in unknown.text
    body = predict_body(env.windows[:10], SECRET_IDS)
    assert env.http.post("/v1/predict", json=body, headers=env.user).status_code == 200
    run = eventually(
        lambda: env.http.post(f"/v1/monitoring/drift/run?scene={SECRET_SCENE}", headers=env.admin),
        lambda r: "of the reference's" in r.text,  # its latest inputs are its first ones
    )
    assert run.status_code == 422 and run.json()["error"]["code"] == "validation_error"
    assert "a run needs 2500" in run.json()["error"]["message"] and SECRET_SCENE not in run.text


def test_predict_feedback_performance(env: Env) -> None:
    obs = env.windows[200:203]  # (3, T_obs, 2)
    ids = SECRET_IDS[:3]
    r = env.http.post("/v1/predict", json=predict_body(obs, ids), headers=env.user)
    assert r.status_code == 200, r.text
    request_id = r.json()["request_id"]
    served = np.array(r.json()["predictions"][0]["positions"])  # (T_pred, 2)
    truth = served + np.array([0.3, 0.4])  # 0.5 m off at every step
    body = {"request_id": request_id, "agent_id": ids[0], "positions": truth.tolist()}
    scored = feedback_until_logged(env, body)
    assert scored.status_code == 200, scored.text
    out = scored.json()
    assert (out["request_id"], out["agent_id"], out["model_version"]) == (request_id, ids[0], "1")
    assert out["variant"] == "default" and out["n_steps"] == 12
    assert out["ade"] == pytest.approx(0.5, abs=1e-3) and out["fde"] == pytest.approx(0.5, abs=1e-3)

    again = env.http.post("/v1/feedback", json=body, headers=env.user)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    partial = {
        "request_id": request_id,
        "agent_id": ids[1],
        "positions": (
            np.array(r.json()["predictions"][1]["positions"][:3]) + np.array([1.0, 0.0])
        ).tolist(),
    }
    part = env.http.post("/v1/feedback", json=partial, headers=env.user).json()
    assert part["n_steps"] == 3 and part["ade"] == pytest.approx(1.0, abs=1e-3)
    unknown = env.http.post("/v1/feedback", json={**body, "agent_id": "nobody"}, headers=env.user)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    for bad in (
        {**body, "positions": [*truth.tolist(), [0.0, 0.0]]},
        {**body, "positions": []},
        {**body, "extra": 1},
        {"agent_id": ids[0], "positions": truth.tolist()},
        {**body, "request_id": "x" * 65},
        {**body, "positions": [[1e9, 0.0]]},
    ):
        bad_r = env.http.post("/v1/feedback", json=bad, headers=env.user)
        assert bad_r.status_code == 422, (bad, bad_r.text)
        assert set(bad_r.json()["error"]) == {"code", "message", "details"}
    nan = env.http.post(
        "/v1/feedback",
        content=b'{"request_id": "a", "agent_id": "b", "positions": [[NaN, 0]]}',
        headers=env.user,
    )
    assert nan.status_code == 422

    perf = env.http.get("/v1/monitoring/performance?window=1h", headers=env.admin)
    assert perf.status_code == 200, perf.text
    (row,) = [v for v in perf.json()["versions"] if v["model_version"] == "1"]
    assert row["n"] == 2 and row["ade"] == pytest.approx(0.75, abs=1e-3)
    assert row["fde"] == pytest.approx(0.75, abs=1e-3)
    assert (row["test_ade"], row["test_fde"]) == (OFFLINE_ADE, 0.2)
    junk = env.http.get("/v1/monitoring/performance?window=soon", headers=env.admin)
    assert junk.status_code == 422 and junk.json()["error"]["details"][0]["loc"] == ["window"]
    text = env.http.get("/metrics", headers=env.admin).text
    assert 'trajops_online_ade_meters_count{model_version="1",variant="default"} 2.0' in text
    assert 'trajops_offline_ade_meters{model_version="1"} 0.1' in text


def test_feedback_right_after_the_answer_and_for_every_agent_at_once(env: Env) -> None:
    """Sent the moment the prediction is answered, feedback is never a 404 (it waits for the
    rows on their way to the store); several agents go in one call, all or nothing."""
    obs, ids = env.windows[400:403], SECRET_IDS[6:9]  # (3, T_obs, 2)
    r = env.http.post("/v1/predict", json=predict_body(obs, ids), headers=env.user)
    assert r.status_code == 200, r.text
    answer = r.json()
    truths = [
        {"agent_id": a, "positions": (np.array(p["positions"]) + np.array([0.3, 0.4])).tolist()}
        for a, p in zip(ids, answer["predictions"], strict=True)
    ]
    body = {"request_id": answer["request_id"], "agents": truths}
    scored = env.http.post("/v1/feedback", json=body, headers=env.user)  # no retry loop
    assert scored.status_code == 200, scored.text
    out = scored.json()
    assert [s["agent_id"] for s in out["scores"]] == ids
    assert all(s["ade"] == pytest.approx(0.5, abs=1e-3) for s in out["scores"])
    again = env.http.post("/v1/feedback", json=body, headers=env.user)
    assert again.status_code == 409
    for bad in (
        {**body, "agent_id": ids[0]},  # both forms
        {"request_id": answer["request_id"]},  # neither
        {**body, "agents": [truths[0], truths[0]]},  # one agent twice
    ):
        assert env.http.post("/v1/feedback", json=bad, headers=env.user).status_code == 422
    unknown = env.http.post(
        "/v1/feedback",
        json={"request_id": "f" * 32, "agents": truths[:1]},
        headers=env.user,
    )
    assert unknown.status_code == 404  # never answered: not worth waiting for


def test_cached_predictions_are_logged_too(env: Env) -> None:
    obs, ids = env.windows[300:301], [SECRET_IDS[5]]
    first, second = (
        env.http.post("/v1/predict", json=predict_body(obs, ids), headers=env.user).json()
        for _ in range(2)
    )
    assert (first["cached"], second["cached"]) == (False, True)
    truth = np.array(second["predictions"][0]["positions"])
    body = {"request_id": second["request_id"], "agent_id": ids[0], "positions": truth.tolist()}
    r = feedback_until_logged(env, body)
    assert r.status_code == 200 and r.json()["ade"] == pytest.approx(0.0, abs=1e-3)


def test_alert_job_fires_and_lists(env: Env) -> None:
    deadline = time.monotonic() + 10
    rules: set[str] = set()
    while time.monotonic() < deadline and not {"latency_p99", "accuracy_degradation"} <= rules:
        env.http.post(
            "/v1/predict", json=predict_body(env.windows[400:401], ["x"]), headers=env.user
        )
        firing = env.http.get("/v1/monitoring/alerts?status=firing", headers=env.admin)
        assert firing.status_code == 200, firing.text
        rules = {a["rule"] for a in firing.json()["alerts"]}
        time.sleep(0.2)
    assert {"latency_p99", "accuracy_degradation"} <= rules
    bad = env.http.get("/v1/monitoring/alerts?status=bogus", headers=env.admin)
    assert bad.status_code == 422


def test_readiness_reports_the_store(env: Env) -> None:
    store = env.http.get("/readyz").json()["checks"]["store"]
    assert store["ok"] and store["migrated"] and store["required"] is False
    assert store["writer_healthy"] is True


def test_audit_rows_chain_and_no_raw_identifiers(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trajops")
    raw = json.dumps(predict_body(env.windows[500:505], SECRET_IDS[5:10])).encode()
    r = env.http.post(
        "/v1/predict", content=raw, headers={**env.user, "x-request-id": "audit-me-1"}
    )
    assert r.status_code == 200
    env.http.get("/v1/models")  # 401: counted per address, one row per window
    env.http.get("/v1/no-such-route", headers=env.admin)  # 404
    store = Store(env.settings.resolved_database_url)
    try:

        def stored() -> tuple[list[AuditEntry], list[PredictionRecord], list[Feedback]]:
            with store.session() as s:
                return (
                    list(s.scalars(select(AuditEntry).order_by(AuditEntry.id))),
                    list(s.scalars(select(PredictionRecord))),
                    list(s.scalars(select(Feedback))),
                )

        audit, preds, feedback = eventually(  # the last request's row is written
            stored, lambda rows: any(a.route == "/v1/no-such-route" for a in rows[0])
        )
        assert verify_chain(store).ok
    finally:
        store.dispose()
    mine = [a for a in audit if a.request_id == "audit-me-1"]
    assert len(mine) == 1
    row = mine[0]
    assert (row.route, row.method, row.status, row.model_version) == (
        "/v1/predict",
        "POST",
        200,
        "1",
    )
    assert row.key_id == env.user_key_id
    assert row.payload_digest == hashlib.sha256(raw).hexdigest()
    assert row.client_key and row.client_key != "127.0.0.1" and len(row.client_key) == 32
    # refusals become one auth.failures row per address and window (test_auth checks it)
    assert not any(a.route == "/v1/models" and a.status == 401 for a in audit)
    assert any(a.route == "/v1/no-such-route" and a.status == 404 for a in audit)
    assert any(a.route == "/v1/feedback" and a.status == 409 for a in audit)

    dumped = repr([vars(x) for x in (*audit, *preds, *feedback)])
    assert len(preds) >= 10 and feedback
    for secret in [*SECRET_IDS, SECRET_SCENE, "127.0.0.1"]:
        assert secret not in dumped, f"raw identifier {secret!r} stored"
        assert secret not in caplog.text, f"raw identifier {secret!r} logged"


def test_the_log_stores_the_inputs_the_model_saw(env: Env) -> None:
    """Served inputs are logged as the model saw them (rounded to mm for the cache key and
    the forecast), not as sent: 4 decimals kept by the store would not round them again."""
    sent = [[1.23456 + 0.4 * t, -7.00051 - 0.1 * t] for t in range(8)]
    r = env.http.post(
        "/v1/predict",
        json={"agents": [{"agent_id": "mm", "positions": sent}]},
        headers={**env.user, "x-request-id": "model-saw-1"},
    )
    assert r.status_code == 200, r.text
    store = Store(env.settings.resolved_database_url)
    try:

        def logged() -> list[PredictionRecord]:
            with store.session() as s:
                query = select(PredictionRecord).where(PredictionRecord.request_id == "model-saw-1")
                return list(s.scalars(query))

        rows = eventually(logged, lambda rows: len(rows) == 1)
    finally:
        store.dispose()
    assert env.settings.store_coordinate_decimals == 4
    assert rows[0].inputs == np.round(np.array(sent), 3).tolist()
    assert (
        rows[0].outputs == np.round(np.array(r.json()["predictions"][0]["positions"]), 4).tolist()
    )


def test_performance_by_scene(env: Env) -> None:
    """``by=scene`` splits online accuracy by the prediction's scene pseudonym (never the raw
    id); feedback on a request sent without a scene is the ``null`` scene."""

    def by_scene() -> dict[str | None, dict[str, float]]:
        r = env.http.get("/v1/monitoring/performance?by=scene&window=1h", headers=env.admin)
        assert r.status_code == 200, r.text
        return {row["scene_key"]: row for row in r.json()["versions"]}

    before = by_scene()
    for scene, off in ((SECRET_SCENE, 3.0), (None, 0.5)):  # one miss (FDE 3 m), one hit
        body = {"agents": predict_body(env.windows[600:601], ["sc"])["agents"]}
        if scene:
            body["scene_id"] = scene
        r = env.http.post("/v1/predict", json=body, headers=env.user).json()
        truth = np.array(r["predictions"][0]["positions"]) + np.array([0.0, off])
        body = {"request_id": r["request_id"], "agent_id": "sc", "positions": truth.tolist()}
        assert feedback_until_logged(env, body).status_code == 200
    after = by_scene()
    (key,) = [k for k in after if k is not None]
    assert SECRET_SCENE not in key and after[key]["test_ade"] == OFFLINE_ADE
    old = before.get(key, {"n": 0, "miss_rate": 0.0})
    assert after[key]["n"] == old["n"] + 1
    assert after[key]["miss_rate"] * after[key]["n"] == pytest.approx(
        old["miss_rate"] * old["n"] + 1
    )
    assert (after[None]["n"], after[None]["miss_rate"]) == (
        before.get(None, {"n": 0})["n"] + 1,
        0.0,
    )
    (overall,) = env.http.get("/v1/monitoring/performance", headers=env.admin).json()["versions"]
    assert "scene_key" not in overall and overall["n"] == sum(r["n"] for r in after.values())
    bad = env.http.get("/v1/monitoring/performance?by=agent", headers=env.admin)
    assert bad.status_code == 422 and "invalid by 'agent'" in bad.json()["error"]["message"]
    assert bad.json()["error"]["details"] == [{"loc": ["by"], "msg": "expected one of scene"}]
    spec = env.http.get("/openapi.json").json()["components"]["schemas"]["PerformanceRow"]
    assert {"scene_key", "miss_rate"} <= set(spec["properties"])
    text = env.http.get("/metrics", headers=env.admin).text
    assert f'trajops_online_misses_total{{model_version="1",scene="{key}"}}' in text
    assert 'trajops_online_ade_by_scene_meters_count{model_version="1",scene="none"}' in text

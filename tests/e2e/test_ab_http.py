"""A/B test end to end through the HTTP API, on a real uvicorn server and a real registry.

Champion v1 is constant velocity; challenger v2 is a ridge model fitted on simulated scenes
whose intercept was shifted by 0.5 m: plausible, registered as a pyfunc like any model, and
clearly worse. An admin creates a 70/30 split experiment over HTTP; one-agent requests are
routed by agent id; ground truth is posted to ``/v1/feedback``; the service's own evaluation
loop rolls the experiment back, and new traffic is no longer routed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tests._support.api_keys import issue_key
from tests._support.waiting import eventually, post_until_logged
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import WindowSet, make_windows
from trajops.models import ConstantVelocity, create_model
from trajops.models.pyfunc import log_forecaster
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.tracking.datasets import DataSplits

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MODEL = "trajectory-forecaster"
N_REQUESTS = 300


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory, small_splits: DataSplits) -> str:
    root = tmp_path_factory.mktemp("ab-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("ab", artifact_location=(root / "art").as_uri())
    bad = create_model("linear")
    bad.fit(make_windows(small_splits.train), make_windows(small_splits.val))
    bad.weights[-1] += 0.5  # type: ignore[attr-defined]  # a constant offset: worse, not broken
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        for model in (ConstantVelocity(), bad):
            with mlflow.start_run(experiment_id=exp):
                log_forecaster(model, registered_model_name=MODEL)
    finally:
        mlflow.set_tracking_uri(previous)
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "challenger", "2")
    return uri


@pytest.fixture(scope="module")
def windows() -> WindowSet:
    tracks = simulate(SimulationConfig(n_scenes=4, n_agents=12, n_steps=60, seed=21))
    return make_windows(tracks)


@pytest.fixture(scope="module")
def api(registry_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = Settings(
        home=tmp_path_factory.mktemp("ab-home"),
        tracking_uri=registry_uri,
        rate_limit_per_s=0,
        experiment_interval_s=1.0,
        log_flush_interval_s=0.1,
    )
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False, freeze_gc=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": token}) as http,
    ):
        yield http


def _predict(api: httpx.Client, agent: str, obs: np.ndarray) -> dict:
    resp = api.post(
        "/v1/predict", json={"agents": [{"agent_id": agent, "positions": obs.tolist()}]}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_experiments_need_admin_and_valid_input(api: httpx.Client) -> None:
    resp = api.post("/v1/experiments", json={"name": "x", "arms": [{"name": "a", "model": "1"}]})
    assert resp.status_code == 422
    resp = api.post(
        "/v1/experiments",
        json={"name": "x", "arms": [{"name": "a", "model": "1"}, {"name": "b", "model": "v99"}]},
    )
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found"
    anonymous = httpx.post(f"{api.base_url}/v1/experiments", json={})
    assert anonymous.status_code == 401


def _concluded(api: httpx.Client, exp_id: str) -> dict:
    """The experiment's status once it stopped running (or after 30 s)."""
    return eventually(
        lambda: api.get(f"/v1/experiments/{exp_id}").json(),
        lambda s: s["status"] != "running",
        timeout_s=30,
        every_s=0.5,
    )


def test_worse_challenger_is_rolled_back_on_its_own(api: httpx.Client, windows: WindowSet) -> None:
    created = api.post(
        "/v1/experiments",
        json={
            "name": "cv-vs-offset",
            "arms": [
                {"name": "control", "model": "champion", "weight": 70},
                {"name": "treatment", "model": "challenger", "weight": 30},
            ],
            "min_samples": 30,
        },
    )
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    assert (
        api.post(
            "/v1/experiments",
            json=created.json()["spec"]
            | {"arms": [{"name": "a", "model": "1"}, {"name": "b", "model": "2"}]},
        ).status_code
        == 409
    )

    idx = np.random.default_rng(0).choice(len(windows), N_REQUESTS, replace=False)
    served = []
    for i, w in enumerate(idx):
        body = _predict(api, f"agent-{i}", windows.obs[w])
        served.append(
            (body["request_id"], f"agent-{i}", w, body["variant"], body["model"]["version"])
        )
    variants = [s[3] for s in served]
    share = sum(v.startswith("treatment@") for v in variants) / N_REQUESTS
    assert 0.22 < share < 0.38  # 70/30 by weight
    assert {s[4] for s in served if s[3].startswith("treatment@")} == {"2"}
    # Sticky: the same agent is routed to the same arm again.
    assert _predict(api, "agent-0", windows.obs[idx[0]])["variant"] == variants[0]

    for request_id, agent, w, _, _ in served:
        resp = post_until_logged(  # the prediction log is written asynchronously
            api,
            "/v1/feedback",
            json={
                "request_id": request_id,
                "agent_id": agent,
                "positions": windows.fut[w].tolist(),
            },
        )
        assert resp.status_code == 200, resp.text

    status = _concluded(api, exp_id)
    assert status["status"] == "rolled_back", status
    assert status["verdict"] == "challenger_worse"
    arms = {a["name"]: a for a in status["arms"]}
    assert arms["treatment"]["ade"] > arms["control"]["ade"]
    assert arms["control"]["n_feedback"] + arms["treatment"]["n_feedback"] == N_REQUESTS
    assert status["srm_p_value"] > 0.001
    time.sleep(2.5)  # every router refresh period has passed
    assert _predict(api, "agent-1", windows.obs[idx[1]])["variant"] == "default"
    alerts = api.get("/v1/monitoring/alerts").json()
    rules = [a["rule"] for a in (alerts["alerts"] if isinstance(alerts, dict) else alerts)]
    assert "experiment_rollback" in rules


def test_shadow_mode_answers_with_control_and_pairs_metrics(
    api: httpx.Client, windows: WindowSet
) -> None:
    created = api.post(
        "/v1/experiments",
        json={
            "name": "shadow-offset",
            "mode": "shadow",
            "arms": [
                {"name": "control", "model": "champion"},
                {"name": "shadow", "model": "challenger"},
            ],
            "min_samples": 20,
        },
    )
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    idx = np.random.default_rng(1).choice(len(windows), 80, replace=False)
    served = []
    for i, w in enumerate(idx):
        body = _predict(api, f"shadow-agent-{i}", windows.obs[w])
        assert body["variant"] == f"control@{exp_id}" and body["model"]["version"] == "1"
        served.append((body["request_id"], f"shadow-agent-{i}", w))
    time.sleep(1.0)  # shadow scoring runs after the responses
    for request_id, agent, w in served:
        resp = post_until_logged(  # the prediction log is written asynchronously
            api,
            "/v1/feedback",
            json={
                "request_id": request_id,
                "agent_id": agent,
                "positions": windows.fut[w].tolist(),
            },
        )
        assert resp.status_code == 200, resp.text
    status = _concluded(api, exp_id)
    arms = {a["name"]: a for a in status["arms"]}
    assert arms["control"]["n_feedback"] == arms["shadow"]["n_feedback"] == 80  # paired
    assert arms["shadow"]["requests"] == 80  # every request was also scored in shadow
    assert status["tests"]["shadow"]["paired_t"]["effect"] > 0
    assert status["srm_p_value"] is None
    assert (status["status"], status["verdict"]) == ("rolled_back", "challenger_worse")

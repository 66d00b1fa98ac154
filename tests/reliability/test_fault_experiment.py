"""A challenger that raises on some inputs inside a running experiment: callers never see it
fail, and the experiment rolls back on its own.

Champion v1 is constant velocity; challenger v2 is the same model wrapped so that it raises for
agents beyond x = 50 m (one request in ten). A 50/50 split experiment runs under steady load:
the failing requests are answered by the default model and counted as errors of the treatment
arm; its error-rate guardrail breaks, the service's evaluation loop rolls back, an
``experiment_rollback`` alert fires and new traffic is no longer routed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests._support.faults import register_flaky
from tests._support.load import SteadyLoad, server_errors, walker_body
from tests._support.registry import MODEL, build_registry
from tests._support.replica import service_settings, serving
from tests._support.waiting import eventually
from trajops.serving import AppOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAIL_ABOVE_X = 50.0


def body(i: int) -> dict[str, Any]:
    """Every tenth request walks beyond x = 50 m (where the challenger raises)."""
    out = walker_body(i % 90)  # x <= 48 m
    if i % 10 == 0:
        for agent in out["agents"]:
            agent["positions"] = [[100.0 + x, y] for x, y in agent["positions"]]
    return out


def test_raising_challenger_is_rolled_back(tmp_path: Path) -> None:
    registry = build_registry(tmp_path / "registry")
    challenger = register_flaky(
        registry.uri, model_name=MODEL, fail_above_x=FAIL_ABOVE_X, experiment_name="serving-tests"
    )
    registry.client.set_registered_model_alias(MODEL, "challenger", challenger)
    settings = service_settings(
        tmp_path / "home", tracking_uri=registry.uri, experiment_interval_s=1.0
    )
    with serving(settings, AppOptions(poll=False, freeze_gc=False)) as (url, http):
        created = http.post(
            "/v1/experiments",
            json={
                "name": "flaky-challenger",
                "arms": [
                    {"name": "control", "model": "champion", "weight": 50},
                    {"name": "treatment", "model": "challenger", "weight": 50},
                ],
            },
        )
        assert created.status_code == 201, created.text
        exp_id = created.json()["id"]
        time.sleep(2.5)  # the router's copy of the running experiments refreshes every 2 s
        key = {"X-API-Key": http.headers["X-API-Key"]}
        with SteadyLoad(url, headers=key, rate_per_s=80, body=body) as load:
            status = eventually(
                lambda: http.get(f"/v1/experiments/{exp_id}").json(),
                lambda s: s["status"] != "running",
                timeout_s=40,
                every_s=0.5,
            )
            rolled_back_at = time.monotonic()
            time.sleep(3)  # every router refresh period has passed
            load.wait_requests(50)
        outcomes = load.outcomes()
        alerts = http.get("/v1/monitoring/alerts").json()["alerts"]

    assert len(outcomes) >= 100, "the load must be real"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    assert all(o.status == 200 for o in outcomes), [o for o in outcomes if o.status != 200][:3]
    assert status["status"] == "rolled_back", status
    assert "error_rate" in status["reason"], status["reason"]
    arms = {a["name"]: a for a in status["arms"]}
    assert arms["treatment"]["errors"] > 0 and arms["control"]["errors"] == 0
    routed = [o for o in outcomes if o.variant and o.variant.startswith("treatment@")]
    assert routed, "the challenger was routed traffic"
    assert {o.version for o in routed if o.index % 10 == 0} <= {"1"}, "default model answered"
    assert {o.version for o in routed if o.index % 10 != 0} == {challenger}
    late = [o for o in outcomes if o.started > rolled_back_at + 2.5]
    assert late and {o.variant for o in late} == {"default"}, "no routing after the rollback"
    assert any(a["rule"] == "experiment_rollback" for a in alerts)

"""A service with something to show: a registry with offline metrics, a drift reference and an
alias history; traffic through a running A/B experiment, scored feedback and a drift run.

Shared by the dashboard's page tests and its browser test (which serves with ``trajops serve``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from tests._support.registry import MODEL, RegistryInfo, build_registry
from tests._support.waiting import post_until_logged
from trajops.data import WindowConfig, make_windows
from trajops.data.simulator import SimulationConfig, simulate
from trajops.monitoring.reference import build_reference, write_reference
from trajops.registry.adapter import Registry
from trajops.registry.history import AliasEvent, record_event

OFFLINE = {"1": (0.21, 0.43), "2": (0.25, 0.52)}
"""version -> (test ADE, test FDE) tagged on the registry versions."""
OFFSETS = ((0.3, 0.4), (0.6, 0.8))
"""Truth = forecast + one of these: ADE and FDE are 0.5 m or 1.0 m."""
SCENES = ("plaza", "station", None)
"""Scene sent with request ``i``: ``SCENES[i % 3]`` (None: sent without one)."""


def dashboard_registry(root: Path) -> tuple[RegistryInfo, np.ndarray]:
    """Two CV versions (champion 1, challenger 2) with offline metrics, a drift reference on
    v1's run and one recorded promotion; plus observation windows of the same crowd."""
    reg = build_registry(root, versions=2)
    for version, (ade, fde) in OFFLINE.items():
        reg.client.set_model_version_tag(MODEL, version, "metric.test_ade", str(ade))
        reg.client.set_model_version_tag(MODEL, version, "metric.test_fde", str(fde))
    tracks = simulate(SimulationConfig.pedestrians(n_agents=15, n_steps=80, n_scenes=2, seed=5))
    write_reference(build_reference(tracks, window_size=60, seed=0), root / "reference")
    run_id = reg.client.get_model_version(MODEL, "1").run_id
    reg.client.log_artifacts(run_id, str(root / "reference"))
    registry = Registry(reg.client, MODEL, uri=reg.uri)
    record_event(
        registry,
        AliasEvent.now(
            alias="champion",
            action="promote",
            from_version=None,
            to_version=1,
            reason="dashboard test",
            actor="tests",
        ),
    )
    obs = make_windows(tracks, WindowConfig(t_pred=0)).obs  # (M, T_obs, 2)
    return reg, np.asarray(obs)


@dataclass
class Traffic:
    """What was sent and what the service answered."""

    experiment_id: str
    predictions: int = 0
    feedback: list[dict[str, object]] = field(default_factory=list)
    drift_report_id: int | None = None

    def mean_ade(self) -> float:
        return float(np.mean([float(f["ade"]) for f in self.feedback]))  # type: ignore[arg-type]

    def by_scene(self) -> dict[tuple[str | None, str, str], tuple[int, float]]:
        """``(scene, version, variant) -> (scored, mean ADE)`` of the feedback sent."""
        groups: dict[tuple[str | None, str, str], list[float]] = defaultdict(list)
        for f in self.feedback:
            key = (f["scene"], str(f["model_version"]), str(f["variant"]))
            groups[key].append(float(f["ade"]))  # type: ignore[arg-type]
        return {k: (len(v), float(np.mean(v))) for k, v in groups.items()}

    def ade_by_version_variant(self) -> dict[tuple[str, str], float]:
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for f in self.feedback:
            groups[(str(f["model_version"]), str(f["variant"]))].append(float(f["ade"]))  # type: ignore[arg-type]
        return {k: float(np.mean(v)) for k, v in groups.items()}


def _post_feedback(http: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    r = post_until_logged(http, "/v1/feedback", json=body)  # 404 while still queued
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


def send_traffic(
    http: httpx.Client, windows: np.ndarray, *, n_requests: int = 40, drift: bool = True
) -> Traffic:
    """Start a 50/50 experiment, predict ``n_requests`` one-agent requests, score each, and run
    drift detection. ``http`` carries an admin key."""
    created = http.post(
        "/v1/experiments",
        json={
            "name": "cv-v1-vs-v2",
            "arms": [
                {"name": "control", "model": "champion", "weight": 50},
                {"name": "treatment", "model": "challenger", "weight": 50},
            ],
            "min_samples": 1000,
        },
    )
    assert created.status_code == 201, created.text
    traffic = Traffic(experiment_id=created.json()["id"])
    for i in range(n_requests):
        obs = windows[i % len(windows)]
        agent, scene = f"walker-{i}", SCENES[i % len(SCENES)]
        body: dict[str, object] = {
            "agents": [{"agent_id": agent, "positions": obs.round(3).tolist()}]
        }
        r = http.post("/v1/predict", json=body if scene is None else {**body, "scene_id": scene})
        assert r.status_code == 200, r.text
        traffic.predictions += 1
        pred = np.asarray(r.json()["predictions"][0]["positions"])  # (T_pred, 2)
        truth = pred + np.asarray(OFFSETS[i % 2])
        truth_body = {
            "request_id": r.json()["request_id"],
            "agent_id": agent,
            "positions": truth.tolist(),
        }
        traffic.feedback.append({**_post_feedback(http, truth_body), "scene": scene})
    if drift:
        run = http.post(f"/v1/monitoring/drift/run?window={n_requests}", timeout=120)
        assert run.status_code == 200, run.text
        traffic.drift_report_id = int(run.json()["id"])
    return traffic

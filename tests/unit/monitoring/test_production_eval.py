"""The gate's production evaluation set: recent realised forecasts a candidate never trained
on, enough of them or none; scored per scene and recorded on the promoted version."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests._support.mlflow_uris import mlflow_uris
from tests._support.production import seed_production
from tests._support.registry import MODEL, build_registry
from trajops.monitoring.production_eval import gate_eval, trained_until
from trajops.monitoring.production_eval import held_out as finder
from trajops.registry.adapter import Registry
from trajops.registry.promotion import promote
from trajops.settings import Settings


@pytest.fixture
def world(tmp_path: Path) -> tuple[Settings, Registry, MlflowClient]:
    reg = build_registry(tmp_path / "reg", versions=2)
    settings = Settings(
        home=tmp_path / "home", tracking_uri=reg.uri, gate_min_production_windows=100
    )  # type: ignore[arg-type]
    settings.ensure_home()
    return settings, Registry(reg.client, MODEL), reg.client


def test_too_few_production_windows_fall_back_to_the_simulator(
    world: tuple[Settings, Registry, MlflowClient],
) -> None:
    settings, registry, _ = world
    assert gate_eval(settings, registry, "2") is None  # an empty store
    seed_production(settings.resolved_database_url, n_windows=60)
    assert gate_eval(settings, registry, "2") is None  # fewer than 100


def test_the_gate_scores_on_recent_production_windows_per_scene(
    world: tuple[Settings, Registry, MlflowClient],
) -> None:
    settings, registry, client = world
    seed_production(settings.resolved_database_url, n_windows=400)
    held_out = gate_eval(settings, registry, "2")
    assert held_out is not None and len(held_out.windows) == 400
    assert held_out.after is None and held_out.source.startswith("production: 400 ")
    with mlflow_uris(str(settings.tracking_uri)):
        result = promote(
            registry,
            version=2,
            alias="champion",
            tolerance=0.02,
            held_out=finder(settings, registry),
        )
    assert result.eval_source == held_out.source
    checks = {c.name: c for c in result.checks}
    assert checks["not_worse"].passed and "on production" in checks["not_worse"].message
    assert checks["per_scene"].message.count("n=") == 3  # three sites
    assert result.candidate_ade == pytest.approx(result.champion_ade)  # both CV
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate.champion.eval"].startswith("production: 400 ")


def test_windows_the_candidate_trained_on_are_not_held_out(
    world: tuple[Settings, Registry, MlflowClient],
) -> None:
    settings, registry, client = world
    seed_production(settings.resolved_database_url, n_windows=400, minutes=120)
    version = registry.get_version(2)
    assert trained_until(registry, version) is None
    # v2's training saw the first hour of the two: half the windows remain held out.
    from datetime import UTC, datetime, timedelta

    fit_until = datetime.now(UTC) - timedelta(minutes=60)
    client.set_tag(version.run_id, "harvest.fit_until", fit_until.isoformat(timespec="seconds"))
    after = trained_until(registry, version)
    assert after is not None and after > fit_until  # plus the embargo
    held_out = gate_eval(
        settings.model_copy(update={"gate_min_production_windows": 50}), registry, "2"
    )
    assert held_out is not None and held_out.after == after
    assert 150 <= len(held_out.windows) <= 210

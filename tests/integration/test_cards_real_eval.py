"""Cards of a real training: a model trained through the tracking path (SQLite MLflow store in
tmp_path) logs a model card and a performance card whose numbers are the logged metrics, and
the registered version's cards read back through the registry and the CLI say the same."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests._support.api_keys import issue_key
from trajops.cards import PerformanceCard, PerformanceConfig
from trajops.cards.store import (
    PERFORMANCE_CARD_PATH,
    PERFORMANCE_JSON_PATH,
    WINDOW_ERRORS_PATH,
    VersionCards,
)
from trajops.cli.main import app
from trajops.registry.adapter import Registry
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.tracking import artifacts as art
from trajops.tracking.datasets import DataSplits, eth_ucy_splits
from trajops.training.run import TrainResult, TrainSpec, train_run

pytestmark = pytest.mark.integration


def _eth_ucy_hotel() -> DataSplits:
    root = os.environ.get("TRAJOPS_DATA_ROOT")
    if not root or not (Path(root) / "hotel").is_dir():
        pytest.skip("TRAJOPS_DATA_ROOT does not point at the ETH/UCY benchmark (needs hotel/)")
    return eth_ucy_splits(Path(root), "hotel")


@pytest.fixture(params=["simulated", "eth_ucy_hotel"])
def trained(
    request: pytest.FixtureRequest,
    embedded_settings: Settings,
    small_splits: DataSplits,
    tmp_path: Path,
) -> tuple[TrainResult, Path]:
    """A registered linear model (v1) and its downloaded run artifacts."""
    splits = small_splits if request.param == "simulated" else _eth_ucy_hotel()
    result = train_run(embedded_settings, TrainSpec(model="linear", register=True), splits)
    local = Path(MlflowClient().download_artifacts(result.run_id, "", str(tmp_path / "run")))
    return result, local


def _table_rows(markdown: str, header: str) -> list[list[str]]:
    """Body rows of the markdown table whose header row starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_logged_cards_carry_the_logged_metrics(trained: tuple[TrainResult, Path]) -> None:
    result, local = trained
    client = MlflowClient()
    metrics = client.get_run(result.run_id).data.metrics
    card_md = (local / art.MODEL_CARD_PATH).read_text()

    # Model card: overall, per scene, per horizon equal the run's metrics (3 decimals shown).
    [overall] = _table_rows(card_md, "windows")
    assert overall[1:] == [
        f"{metrics[k]:.3f}" for k in ("test_ade", "test_fde", "test_min_ade_20", "test_min_fde_20")
    ]
    scenes = _table_rows(card_md, "scene")
    assert scenes, "no per-scene rows"
    for scene, _n, ade, fde in scenes:
        assert ade == f"{metrics[art.metric_key('test_ade', 'scene', scene)]:.3f}"
        assert fde == f"{metrics[art.metric_key('test_fde', 'scene', scene)]:.3f}"
    history = client.get_metric_history(result.run_id, "test_horizon_error")
    horizon = _table_rows(card_md, "lead time (s)")
    assert [row[1] for row in horizon] == [
        f"{m.value:.3f}" for m in sorted(history, key=lambda m: m.step)
    ]
    assert f"validation ADE {metrics['val_ade']:.3f} m" in card_md

    # Performance card: the same numbers at full precision, and the per-window table behind it.
    perf = PerformanceCard.from_dict(json.loads((local / PERFORMANCE_JSON_PATH).read_text()))
    assert perf.ade == pytest.approx(metrics["test_ade"], rel=1e-9)
    assert perf.fde == pytest.approx(metrics["test_fde"], rel=1e-9)
    for stat in perf.grouping("scene").groups:
        assert stat.ade == pytest.approx(
            metrics[art.metric_key("test_ade", "scene", stat.group)], rel=1e-9
        )
    for grouping in ("speed", "density"):
        for stat in perf.grouping(grouping).groups:
            key = art.metric_key("test_ade", grouping, stat.group)
            if stat.n:
                assert stat.ade == pytest.approx(metrics[key], rel=1e-9), key
            else:
                assert key not in metrics
    windows = pd.read_parquet(local / WINDOW_ERRORS_PATH)
    assert (
        len(windows)
        == perf.n
        == int(client.get_run(result.run_id).data.params["data.n_test_windows"])
    )
    assert "## Flags" in (local / PERFORMANCE_CARD_PATH).read_text()
    assert sum(s.n for s in perf.grouping("path").groups) == perf.n
    # The model card summarises the same performance card.
    for g in perf.groupings:
        if g.disparity is not None:
            assert f"| {g.name} | {g.disparity:.2f}x |" in card_md


def test_a_registered_versions_cards_read_back_through_registry_and_cli(
    trained: tuple[TrainResult, Path], embedded_settings: Settings
) -> None:
    result, local = trained
    cards = VersionCards(Registry.from_settings(embedded_settings))
    text = cards.markdown("1")
    assert text.startswith("# Model card: `trajectory-forecaster` v1 (`linear` forecaster)")
    assert f"training run: `{result.run_id}`" in text
    # Apart from the registration header, the served card is the card logged at training.
    logged = (local / art.MODEL_CARD_PATH).read_text()
    assert text.split("## Intended use", 1)[1] == logged.split("## Intended use", 1)[1]

    logged_perf = PerformanceCard.from_dict(json.loads((local / PERFORMANCE_JSON_PATH).read_text()))
    served = cards.performance("v1")
    assert served.groupings == logged_perf.groupings
    assert served.source["version"] == 1 and served.source["run_id"] == result.run_id
    # Rebuilt from the per-window errors with the default config: the identical card.
    rebuilt = cards.performance("1", PerformanceConfig())
    assert rebuilt.groupings == logged_perf.groupings
    coarse = cards.performance(
        "1", PerformanceConfig(groupings=("scene", "path"), min_samples=10_000)
    )
    assert [g.name for g in coarse.groupings] == ["scene", "path"]
    assert all(s.under_sampled for g in coarse.groupings for s in g.groups)

    runner = CliRunner()
    model = runner.invoke(app, ["cards", "model", "1"])
    assert model.exit_code == 0, model.output
    assert model.output.strip() == text.strip()
    perf = runner.invoke(app, ["cards", "performance", "1", "--json"])
    assert perf.exit_code == 0, perf.output
    assert json.loads(perf.output)["ade"] == pytest.approx(result.metrics["test_ade"], rel=1e-9)
    regrouped = runner.invoke(app, ["cards", "performance", "1", "--directions", "8"])
    assert regrouped.exit_code == 0, regrouped.output
    assert re.search(r"^\| north-east \| \d+ \|", regrouped.output, re.M)


def test_the_cards_are_served_over_http_with_scopes(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    result = train_run(embedded_settings, TrainSpec(model="linear", register=True), small_splits)
    registry = Registry.from_settings(embedded_settings)
    registry.set_alias("champion", result.version or 0)
    expected = VersionCards(registry).markdown("1")
    _, predict_key = issue_key(embedded_settings, scopes="predict")
    _, feedback_key = issue_key(embedded_settings, scopes="feedback", name="feedback-only")
    app = create_app(embedded_settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        auth = {"X-API-Key": predict_key}
        card = http.get("/v1/models/1/card", headers=auth)
        assert card.status_code == 200, card.text
        assert card.headers["content-type"].startswith("text/markdown")
        assert card.text == expected
        by_alias = http.get("/v1/models/champion/card", headers=auth)
        assert by_alias.text.startswith("# Model card: `trajectory-forecaster` v1")
        assert "aliases: `champion`" in by_alias.text
        perf = http.get("/v1/models/v1/card", params={"kind": "performance"}, headers=auth)
        assert perf.status_code == 200
        assert perf.text.startswith("# Performance card: `trajectory-forecaster` v1 (`linear`)")
        assert f"ADE **{result.metrics['test_ade']:.3f} m**" in perf.text

        unknown = http.get("/v1/models/7/card", headers=auth)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        assert http.get("/v1/models/1/card", params={"kind": "x"}, headers=auth).status_code == 422
        assert http.get("/v1/models/1/card").status_code == 401
        assert http.get("/v1/models/1/card", headers={"X-API-Key": feedback_key}).status_code == 403

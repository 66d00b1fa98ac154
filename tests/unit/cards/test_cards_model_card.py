"""The model card's content (rendered from logged facts) and the cards CLI on a file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from trajops.cards import ModelCardFacts, performance_card, render_model_card
from trajops.cli.main import app
from trajops.errors import ValidationError

EVALUATION = {
    "run_id": "r1",
    "model": "linear",
    "data": {
        "name": "eth_ucy:hotel",
        "source": "/data/eth_ucy/hotel",
        "train_digest": "a" * 64,
        "test_digest": "b" * 64,
        "n_train": 900,
        "n_val": 100,
        "n_test": 300,
    },
    "n": 300,
    "ade": 0.41234,
    "fde": 0.87654,
    "min_ade_20": 0.30001,
    "min_fde_20": 0.5,
    "horizon": [{"t_s": round(0.4 * (i + 1), 6), "error": 0.07 * (i + 1)} for i in range(12)],
    "scenes": {"biwi_hotel": {"n": 300, "ade": 0.41234, "fde": 0.87654}},
    "groups": [],
}


def per_window(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "scene": np.where(np.arange(n) < n // 2, "s1", "s2"),
            "agent_id": (np.arange(n) // 3).astype(str),
            "start_frame": np.arange(n) * 10,
            "ade": rng.gamma(2.0, 0.2, n),
            "fde": rng.gamma(2.0, 0.4, n),
            "speed": rng.uniform(0.0, 2.0, n),
            "density": rng.integers(0, 8, n),
            "heading_deg": rng.uniform(0, 360, n),
            "cv_fde": rng.gamma(2.0, 0.3, n),
        }
    )


def test_the_model_card_has_every_section_and_the_logged_numbers() -> None:
    facts = ModelCardFacts(
        model="linear",
        run_id="r1",
        params={"model.alpha": "10.0", "window.t_obs": "8", "data.fold": "hotel"},
        metrics={"test_ade": 0.41234, "val_ade": 0.39},
        evaluation=EVALUATION,
        performance=performance_card(per_window(), title="x"),
        registered={
            "name": "trajectory-forecaster",
            "version": 3,
            "aliases": ["champion"],
            "created_at": "2026-01-01T00:00:00+00:00",
            "status": "READY",
        },
    )
    text = render_model_card(facts)
    assert text.startswith("# Model card: `trajectory-forecaster` v3 (`linear` forecaster)")
    for section in (
        "## Intended use",
        "## Out-of-scope uses",
        "## Training data and lineage",
        "## Test metrics",
        "### Per scene",
        "### Per horizon",
        "## Performance across groups",
        "## Hyper-parameters",
        "## Limitations",
        "## Ethical considerations",
    ):
        assert section in text, section
    assert "| 300 | 0.412 | 0.877 | 0.300 | 0.500 |" in text
    assert "| biwi_hotel | 300 | 0.412 | 0.877 |" in text
    assert "| 4.8 | 0.840 |" in text
    assert "fold (held-out scene) `hotel`" in text and "a" * 64 in text
    assert "validation ADE 0.390 m" in text and "| alpha | 10.0 |" in text
    assert "aliases: `champion`" in text
    assert "Errors grow from 0.070 m at 0.4 s to 0.840 m at 4.8 s." in text


def test_a_run_without_performance_card_still_renders() -> None:
    facts = ModelCardFacts(model="cv", run_id="r0", params={}, metrics={}, evaluation=EVALUATION)
    text = render_model_card(facts)
    assert "# Model card: unregistered run (`cv` forecaster)" in text
    assert "No performance card was logged" in text
    assert "A baseline: it ignores neighbours" in text


def test_cards_performance_cli_builds_a_card_from_a_per_window_file(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    per_window().to_csv(path, index=False)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["cards", "performance", "--evaluation", str(path), "--json", "--min-samples", "10"],
    )
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["n"] == 120 and card["config"]["min_samples"] == 10
    assert [g["name"] for g in card["groupings"]] == [
        "scene",
        "speed",
        "density",
        "direction",
        "path",
    ]
    assert card["ade"] == per_window()["ade"].mean()
    out = tmp_path / "card.md"
    md = runner.invoke(
        app,
        ["cards", "performance", "--evaluation", str(path), "--groupings", "scene", "-o", str(out)],
    )
    assert md.exit_code == 0
    assert "## By scene" in out.read_text() and "## By observed speed" not in out.read_text()


def test_cards_performance_cli_refuses_bad_input_with_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    per_window().drop(columns=["speed"]).to_csv(path, index=False)
    runner = CliRunner()
    for args in (
        ["cards", "performance", "--evaluation", str(path)],
        ["cards", "performance"],
        ["cards", "performance", "--evaluation", str(tmp_path / "none.csv")],
    ):
        result = runner.invoke(app, args)
        # A ValidationError is what `main()` renders as one line and exit status 2.
        assert isinstance(result.exception, ValidationError), result.exception
    missing = runner.invoke(app, ["cards", "performance", "--evaluation", str(path)])
    assert "speed" in str(missing.exception)

"""``trajops cards performance`` on a per-window file: a card as JSON or markdown, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests._support.cards import per_window
from trajops.cli.main import app
from trajops.errors import ValidationError


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

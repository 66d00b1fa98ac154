"""``trajops config``: the docs check and write, and ``show`` with its secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajops.cards.configuration import render_configuration
from trajops.cli.main import app


def test_config_docs_check_fails_on_a_stale_file_and_passes_after_writing(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "configuration.md"
    runner = CliRunner()
    missing = runner.invoke(app, ["config", "docs", "--check", "--output", str(out)])
    assert missing.exit_code == 1 and not out.exists()
    written = runner.invoke(app, ["config", "docs", "--output", str(out)])
    assert written.exit_code == 0 and out.read_text() == render_configuration()
    assert runner.invoke(app, ["config", "docs", "--check", "--output", str(out)]).exit_code == 0
    out.write_text(out.read_text().replace("Uvicorn worker processes.", "Workers."))
    stale = runner.invoke(app, ["config", "docs", "--check", "--output", str(out)])
    assert stale.exit_code == 1
    assert "stale" in stale.output


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path))
    monkeypatch.setenv("TRAJOPS_API_KEY_PEPPER", "pepper-that-must-not-leak")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "pepper-that-must-not-leak" not in result.output
    assert '"TRAJOPS_API_KEY_PEPPER": "**********"' in result.output
    assert f'"TRAJOPS_HOME": "{tmp_path}"' in result.output

"""docs/configuration.md is generated from the Settings field descriptions and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajops.cards.configuration import field_sections, render_configuration, undocumented_fields
from trajops.cli.main import app
from trajops.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_docs_configuration_md_is_not_stale() -> None:
    assert DOC.is_file(), "docs/configuration.md is missing: run `trajops config docs`"
    assert DOC.read_text() == render_configuration(), (
        "docs/configuration.md is stale: run `trajops config docs` and commit the result"
    )


def test_every_setting_has_a_description_a_section_and_a_row() -> None:
    assert undocumented_fields() == []
    sections = field_sections()
    assert set(sections) == set(Settings.model_fields)
    assert sections["redis_url"] == "cache" and sections["auth_enabled"] == "security"
    text = render_configuration()
    for name in Settings.model_fields:
        assert f"| `TRAJOPS_{name.upper()}` |" in text
    # Secrets are typed as such, bounds come from the field constraints.
    assert "| `TRAJOPS_API_KEY_PEPPER` | secret \\| empty | (empty) |" in text
    assert "| `TRAJOPS_PORT` | int | `8000` | >= 1, <= 65535 |" in text


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

"""docs/configuration.md is generated from the Settings field descriptions and must be current."""

from __future__ import annotations

from pathlib import Path

from trajops.cards.configuration import field_sections, render_configuration, undocumented_fields
from trajops.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


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

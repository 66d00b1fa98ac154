"""Settings: a new home is private, and the embedded stores are created 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from trajops.settings import Settings
from trajops.store import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_and_its_embedded_stores_are_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "a" / "home")
    home = settings.ensure_home()
    assert _mode(home) == 0o700
    store = Store(settings.resolved_database_url)  # SQLite opens the file made for it
    store.dispose()
    for name in ("trajops.db", "mlflow.db"):
        assert _mode(home / name) == 0o600, name


def test_wider_embedded_stores_are_tightened_and_external_ones_left_alone(tmp_path: Path) -> None:
    (tmp_path / "trajops.db").touch(mode=0o644)
    (tmp_path / "trajops.db").chmod(0o644)
    Settings(home=tmp_path).ensure_home()
    assert _mode(tmp_path / "trajops.db") == 0o600
    other = tmp_path / "other"
    other.mkdir()
    Settings(
        home=other, database_url="postgresql://db/x", tracking_uri="http://mlflow:5000"
    ).ensure_home()  # type: ignore[arg-type]
    assert sorted(p.name for p in other.iterdir()) == []

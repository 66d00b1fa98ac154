"""Fixtures of the CLI tests: the service's (:mod:`tests._support.app_fixtures`) and ``cli``,
the ``trajops`` entry point run in-process (:mod:`tests._support.cli`)."""

from pathlib import Path

import pytest

from tests._support.app_fixtures import _isolated_mlflow_uris, client, registry
from tests._support.cli import cli

__all__ = ["_isolated_mlflow_uris", "cli", "client", "registry"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded home of this test's own (``TRAJOPS_HOME``), nothing configured elsewhere."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRAJOPS_HOME", str(home))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI", "TRAJOPS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return home

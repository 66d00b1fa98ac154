"""``trajops ui``: the MLflow UI command on the resolved tracking store and the home's artifacts.

The command runs here through its own one-command app, so it is tested whether or not the
entry point lists it; ``tests/e2e/test_cli_ui.py`` starts the UI for real.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from trajops.cli.ui import UI_HOST, UI_PORT, ui
from trajops.errors import ValidationError

APP = typer.Typer()
APP.command()(ui)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TRAJOPS_HOME", str(home))
    for var in ("TRAJOPS_TRACKING_URI", "TRAJOPS_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    return home


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_print_command_points_mlflow_at_the_resolved_store_and_home_artifacts(home: Path) -> None:
    result = CliRunner().invoke(APP, ["--print-command"])
    assert result.exit_code == 0, result.output
    command = shlex.split(result.output.strip())
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    store = f"sqlite:///{home.resolve() / 'mlflow.db'}"
    assert _option(command, "--backend-store-uri") == store
    assert _option(command, "--registry-store-uri") == store
    artifacts = (home.resolve() / "artifacts").as_uri()
    assert _option(command, "--default-artifact-root") == artifacts
    assert _option(command, "--artifacts-destination") == artifacts
    assert (_option(command, "--host"), _option(command, "--port")) == (UI_HOST, str(UI_PORT))
    assert not home.exists(), "printing the command creates nothing"


def test_host_port_and_a_separate_registry_are_passed_on(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_REGISTRY_URI", "sqlite:////srv/registry.db")
    result = CliRunner().invoke(APP, ["--print-command", "--host", "0.0.0.0", "--port", "5050"])
    command = shlex.split(result.output.strip())
    assert _option(command, "--registry-store-uri") == "sqlite:////srv/registry.db"
    assert (_option(command, "--host"), _option(command, "--port")) == ("0.0.0.0", "5050")


def test_a_tracking_server_serves_its_own_ui(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", "https://mlflow.example.org")
    result = CliRunner().invoke(APP, [])
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip()
        == "the tracking server serves the MLflow UI: https://mlflow.example.org"
    )


def test_a_port_out_of_range_is_a_user_error(home: Path) -> None:
    result = CliRunner().invoke(APP, ["--port", "70000"])
    assert isinstance(result.exception, ValidationError)
    assert "70000" in result.exception.message

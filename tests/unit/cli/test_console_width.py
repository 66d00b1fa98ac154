"""Tables through a pipe are as wide as their content (rich alone folds them at 80 columns);
a terminal, or an explicit ``COLUMNS``, keeps its width."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from trajops.cli._common import PIPED_WIDTH, console_width


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_width_is_unlimited_only_for_a_pipe_without_columns() -> None:
    assert console_width(io.StringIO(), {}) == PIPED_WIDTH
    assert console_width(io.StringIO(), {"COLUMNS": "120"}) is None  # rich reads COLUMNS
    assert console_width(_Tty(), {}) is None  # rich asks the terminal
    closed = io.StringIO()
    closed.close()
    assert console_width(closed, {}) == PIPED_WIDTH


def _config_show(home: Path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    clean = {k: v for k, v in clean.items() if not k.startswith("TRAJOPS_")}
    done = subprocess.run(
        [sys.executable, "-c", "from trajops.cli.main import main; main()", "config", "show"],
        env={**clean, "TRAJOPS_HOME": str(home), **env},
        stdin=subprocess.DEVNULL,  # no terminal anywhere: rich would fall back to 80 columns
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()


def test_a_wide_table_is_not_folded_when_piped(tmp_path: Path) -> None:
    home = tmp_path / ("a-rather-long-folder-name-" * 4) / "home"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    assert len(uri) > 100
    piped = _config_show(home)
    assert any(uri in line for line in piped), "the URI on one line, whole"
    assert max(map(len, piped)) > 100
    narrow = _config_show(home, COLUMNS="80")
    assert max(map(len, narrow)) <= 80, "an explicit COLUMNS is respected"
    assert not any(uri in line for line in narrow)

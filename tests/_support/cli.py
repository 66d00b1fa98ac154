"""The ``trajops`` console entry point (``trajops.cli.main:main``) run in-process.

It is what the installed command runs, exit statuses and the JSON rendering of errors
included; a subprocess per call would pay the full CLI import (seconds on this machine).
Import :func:`cli` into a ``conftest.py`` (or a test module) to use the fixture.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from trajops.cli.main import main


@dataclass(frozen=True)
class Run:
    """One command: its exit status and what it wrote."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Stdout as the one JSON document a ``--json`` command prints (fails otherwise)."""
        return json.loads(self.stdout)


CliRunner = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``cli("models", "list", "--json")`` runs ``trajops models list --json``."""

    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["trajops", *args])
        capsys.readouterr()
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        status = 0 if code is None else code if isinstance(code, int) else 1  # str: a message
        return Run(status, out.out, out.err)

    return run

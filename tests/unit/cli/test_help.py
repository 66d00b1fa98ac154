"""``--help`` of every command as a user reads it at 80 columns, through a pipe: no type label on
a flag (``--json <bool>``), no summary cut short (``...``), every option's help in full."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from trajops.cli.main import app

ROOT = typer.main.get_command(app)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)]
    if isinstance(group, TyperGroup):
        for name, sub in sorted(group.commands.items()):
            found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(ROOT)


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _flat(text: str) -> str:
    """``text`` without any whitespace: wrapping (at spaces or after hyphens) is not a cut."""
    return "".join(text.split())


def _summary(command: Any) -> str:
    """The first paragraph of a command's help: what a group's listing should show of it."""
    return " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "trajops" for p, _ in COMMANDS]
)
def test_help_is_plain_and_complete(path: tuple[str, ...], command: Any) -> None:
    text = _help(path)
    assert "<bool>" not in text, "a flag takes no value: no type label"
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = _flat(text)
    assert _flat(command.help or "") in flat, "the command's help in full"
    for param in command.params:
        if isinstance(param, TyperOption) and param.help:
            assert _flat(param.help) in flat, f"help of {param.opts} in full"
    if isinstance(command, TyperGroup):
        listing = text.split("Commands:", 1)[1]
        for name, sub in command.commands.items():
            line = next(ln for ln in listing.splitlines() if ln.split()[:1] == [name])
            shown = line.split(None, 1)[1] if len(line.split()) > 1 else ""
            assert not shown.rstrip().endswith("..."), f"{name}: summary cut short: {shown!r}"
            assert _flat(shown) and _flat(_summary(sub)).startswith(_flat(shown)), name


def test_every_command_that_reports_a_result_has_json() -> None:
    """Servers (serve, dashboard, ui, demo) and raw exports (audit/privacy export: already
    JSON) report no result; the rest print one JSON document with --json."""
    exempt = {
        ("serve",), ("dashboard",), ("ui",), ("demo",),
        ("audit", "export"), ("privacy", "export"),
    }  # fmt: skip
    missing = [
        " ".join(path)
        for path, command in COMMANDS
        if path
        and not isinstance(command, TyperGroup)
        and path not in exempt
        and path[0] not in {"keys", "users"}  # their own owners' (keys has --json where needed)
        and not any("--json" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert missing == []

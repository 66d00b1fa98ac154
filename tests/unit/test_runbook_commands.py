"""The runbooks' commands exist: every fenced ``trajops`` command parses against the Typer app
(command path, options, argument count and types), every ``curl`` hits a real API route with
the right method, and every runbook has symptoms, commands and a recovery check."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from trajops.cli.main import app
from trajops.settings import Settings

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
REQUIRED_RUNBOOKS = {
    "drift-alert.md",
    "accuracy-degradation.md",
    "latency-alert.md",
    "error-spike.md",
    "model-rollback.md",
    "postgresql-outage.md",
    "redis-outage.md",
    "key-compromise.md",
    "gdpr-erasure.md",
    "backup-restore.md",
}
_FENCE = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.S | re.M)
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = {"|", "||", "&&", ";", "&"}


@dataclass(frozen=True)
class Command:
    """One simple command of a fenced block: where it is and its tokens."""

    where: str
    tokens: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.tokens)}"


def _logical_lines(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _segments(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [s for s in out if s]


def fenced_commands(folder: Path = RUNBOOKS) -> list[Command]:
    """Every simple command in the bash blocks of ``folder/*.md`` (env assignments dropped)."""
    found = []
    for path in sorted(folder.glob("*.md")):
        for block in _FENCE.findall(path.read_text()):
            for line in _logical_lines(block):
                for tokens in _segments(line):
                    while tokens and _ASSIGNMENT.match(tokens[0]):
                        tokens = tokens[1:]
                    if tokens:
                        found.append(Command(path.name, tuple(tokens)))
    return found


def _root() -> Any:
    return typer.main.get_command(app)


def check_cli(tokens: tuple[str, ...]) -> None:
    """Parse ``trajops ...`` tokens with the real command tree; raises on any mismatch."""
    root = _root()
    ctx = root.make_context("trajops", [], resilient_parsing=True)
    command, path = root, ["trajops"]
    args = [_VARIABLE.sub("1", t) for t in tokens[1:]]
    while hasattr(command, "list_commands"):
        assert args, f"`{' '.join(path)}` needs a sub-command"
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`{' '.join(path)}` has no sub-command {name!r}"
        command, path = sub, [*path, name]
    # Parses options, arguments and their types exactly as a real call would, without running.
    command.make_context(" ".join(path), args)


def _route_table() -> list[tuple[re.Pattern[str], set[str], str]]:
    from trajops.serving import create_app

    api = create_app(Settings(auth_enabled=True))
    table = []
    for route in api.routes:
        template = getattr(route, "path", "")
        methods = set(getattr(route, "methods", None) or ())
        pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", r"[^/]+", template) + "$")
        table.append((pattern, methods, template))
    return table


def curl_request(tokens: tuple[str, ...]) -> tuple[str, str]:
    """``(method, path)`` of a ``curl`` command against ``$TRAJOPS_URL``."""
    urls = [t for t in tokens if t.startswith("$TRAJOPS_URL")]
    assert len(urls) == 1, "a runbook curl must target exactly one $TRAJOPS_URL/... address"
    path = urls[0][len("$TRAJOPS_URL") :].split("?", 1)[0]
    method = "GET"
    if "-X" in tokens:
        method = tokens[tokens.index("-X") + 1]
    elif any(t in ("-d", "--data", "--data-binary", "--json") for t in tokens):
        method = "POST"
    return method, _VARIABLE.sub("1", path)


COMMANDS = fenced_commands()
CLI = [c for c in COMMANDS if c.tokens[0] == "trajops"]
CURL = [c for c in COMMANDS if c.tokens[0] == "curl"]


def test_every_runbook_the_issue_asks_for_exists_with_symptoms_commands_and_a_recovery_check() -> (
    None
):
    present = {p.name for p in RUNBOOKS.glob("*.md")}
    assert present >= REQUIRED_RUNBOOKS, sorted(REQUIRED_RUNBOOKS - present)
    for name in sorted(REQUIRED_RUNBOOKS):
        text = (RUNBOOKS / name).read_text()
        assert "## Symptoms" in text, name
        assert "## Verify recovery" in text, name
        verify = text.split("## Verify recovery", 1)[1]
        assert _FENCE.search(verify), f"{name}: the recovery check has no commands"
        assert any(c.where == name for c in CLI + CURL), f"{name}: no trajops or curl command"


def test_the_runbooks_hold_many_commands() -> None:
    # Guards the parser itself: a regex that silently matched nothing would pass every check.
    assert len(CLI) >= 50
    assert len(CURL) >= 25
    assert {c.tokens[1] for c in CLI} >= {"models", "keys", "privacy", "audit", "drift", "cards"}


@pytest.mark.parametrize("command", CLI, ids=str)
def test_runbook_cli_command_parses_against_the_typer_app(command: Command) -> None:
    check_cli(command.tokens)


@pytest.fixture(scope="module")
def routes() -> list[tuple[re.Pattern[str], set[str], str]]:
    """The API's routes (the app is built, not started)."""
    return _route_table()


@pytest.mark.parametrize("command", CURL, ids=str)
def test_runbook_curl_targets_a_real_route(
    command: Command, routes: list[tuple[re.Pattern[str], set[str], str]]
) -> None:
    method, path = curl_request(command.tokens)
    matches = [(methods, t) for pattern, methods, t in routes if pattern.match(path)]
    assert matches, f"no API route matches {path}"
    assert any(method in methods for methods, _ in matches), f"{method} not allowed on {path}"


@pytest.mark.parametrize(
    "tokens",
    [
        ("trajops", "models", "rollbak"),
        ("trajops", "models", "rollback", "--alais", "champion"),
        ("trajops", "keys", "revoke"),
        ("trajops", "drift", "run", "--window", "many"),
        ("trajops", "privacy"),
    ],
    ids=["unknown command", "unknown option", "missing argument", "bad type", "group only"],
)
def test_the_checker_rejects_commands_that_do_not_exist(tokens: tuple[str, ...]) -> None:
    with pytest.raises(Exception):  # noqa: B017 - click's UsageError family or AssertionError
        check_cli(tokens)


def test_the_fence_parser_splits_pipelines_and_drops_assignments(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text(
        "```bash\nFOO=1 trajops models list --json | jq . && \\\n  trajops audit verify  # ok\n```\n"
        "```python\ntrajops not-a-shell-block\n```\n"
    )
    got = [c.tokens for c in fenced_commands(tmp_path)]
    assert got == [
        ("trajops", "models", "list", "--json"),
        ("jq", "."),
        ("trajops", "audit", "verify"),
    ]

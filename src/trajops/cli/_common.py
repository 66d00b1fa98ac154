"""Shared CLI helpers: settings, consoles, ``--json`` output, and domain errors as exit codes.

``--json`` is one option for every command (:data:`JsonOpt`): its callback scopes the command's
invocation as JSON output, so :func:`fail` renders an error of that command as the API's
``{"error": {"code", "message", "details"}}`` on stdout, and :func:`status_console` sends the
human-readable lines to stderr while stdout carries the one JSON document.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.markup import escape

from trajops._finite import finite
from trajops.errors import ConfigError, TrajopsError
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.db import opened_store as open_store

EXIT_USER_ERROR = 2
"""Exit status for a user mistake (bad input, unknown name, refused promotion)."""
EXIT_UNAVAILABLE = 3
"""Exit status when a dependency (tracking server, database) cannot be reached."""

PIPED_WIDTH = 10_000
"""Console width when output goes to a pipe or a file and ``COLUMNS`` is unset: rich would
fall back to 80 columns and fold wide tables; a pipe has no width to respect."""


def console_width(stream: IO[str], environ: dict[str, str] | None = None) -> int | None:
    """The width to give rich for ``stream``: ``None`` (rich asks the terminal, or reads
    ``COLUMNS``) for a terminal or an explicit ``COLUMNS``; :data:`PIPED_WIDTH` otherwise."""
    columns = (os.environ if environ is None else environ).get("COLUMNS", "")
    if columns.isdigit():
        return None
    try:
        return None if stream.isatty() else PIPED_WIDTH
    except (AttributeError, ValueError):  # a closed or unusual stream: not a terminal
        return PIPED_WIDTH


console = Console(width=console_width(sys.stdout))
err_console = Console(stderr=True, width=console_width(sys.stderr))

_json_output: ContextVar[bool] = ContextVar("trajops_json_output", default=False)
_json_errors: weakref.WeakSet[BaseException] = weakref.WeakSet()


@contextmanager
def _json_scope(enabled: bool) -> Iterator[None]:
    # Entered by the option's callback, left when the command's context closes: an error
    # raised by the command is marked on the way out, so `fail` renders it as JSON later
    # (in `main`, after the context is gone) without any state outliving the invocation.
    token = _json_output.set(enabled)
    try:
        yield
    except TrajopsError as exc:
        if enabled:
            _json_errors.add(exc)
        raise
    finally:
        _json_output.reset(token)


def _json_callback(ctx: typer.Context, value: bool) -> bool:
    ctx.with_resource(_json_scope(value))
    return value


def json_flag(help_text: str = "Print one JSON document on stdout (errors too).") -> Any:
    """The ``--json`` option; its callback makes the command's errors JSON as well."""
    return typer.Option("--json", help=help_text, callback=_json_callback)


JsonOpt = Annotated[bool, json_flag()]
"""``--json`` for a command that reports a result."""


def json_output() -> bool:
    """Whether the running command was asked for ``--json``."""
    return _json_output.get()


def status_console() -> Console:
    """Where progress and human-readable lines go: stdout, or stderr under ``--json``."""
    return err_console if json_output() else console


def json_text(payload: dict[str, Any] | list[Any]) -> str:
    """``payload`` as indented JSON: NaN and infinities as ``null``, dates and paths as text."""
    return json.dumps(finite(payload), indent=2, allow_nan=False, default=str)


def emit_json(payload: dict[str, Any] | list[Any]) -> None:
    """Print ``payload`` as the command's one JSON document on stdout."""
    typer.echo(json_text(payload))


def load_settings() -> Settings:
    """Build settings from the environment; a bad value exits with a clear message."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        details = [
            {"loc": [f"TRAJOPS_{'_'.join(map(str, e['loc'])).upper()}"], "msg": e["msg"]}
            for e in exc.errors()
        ]
        fail(ConfigError("invalid configuration", details=details))


def fail(exc: TrajopsError, *, json_output: bool | None = None) -> NoReturn:
    """Print a domain error and exit 2 (user error) or 3 (a dependency is unavailable).

    Args:
        exc: the error.
        json_output: print it as ``{"error": {...}}`` on stdout; default: as the command
            was asked (``--json``), else one clear line (plus details) on stderr.
    """
    if json_output is None:
        json_output = _json_output.get() or exc in _json_errors
    if json_output:
        typer.echo(json.dumps(finite(exc.to_dict()), default=str))
    else:
        # escaped: a message quoting the user's input or `pip install 'x[extra]'` keeps its brackets
        err_console.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        for d in exc.details[:10]:
            loc = ".".join(str(p) for p in d.get("loc", []))
            if loc and loc not in exc.message:
                err_console.print(escape(f"  {loc}: {d.get('msg', '')}"), highlight=False)
    sys.exit(EXIT_UNAVAILABLE if exc.status_code == 503 else EXIT_USER_ERROR)


def run_foreground(command: list[str], *, env: dict[str, str] | None = None) -> int:
    """Run a server process (Streamlit, MLflow) until it stops; its exit status.

    A SIGTERM to this process (a container stop) is passed on; Ctrl-C waits for the child to
    stop (30 s, then kills it). A stop by SIGINT or SIGTERM counts as a clean exit (0).
    """
    process = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code


@contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """The operational store for one CLI command; database errors become ServiceUnavailable."""
    settings.ensure_home()
    with open_store(settings.resolved_database_url) as store:
        yield store


def scene_key(settings: Settings, scene: str) -> str:
    """The pseudonym a scene id (as clients send it) is stored under (``scene_key``)."""
    from trajops.privacy import Pseudonymiser, load_or_create_key

    return Pseudonymiser(load_or_create_key(settings))(scene, namespace="scene")

"""Shared CLI helpers: settings, console, and turning domain errors into exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from pydantic import ValidationError as PydanticValidationError
from rich.console import Console

from trajops.errors import TrajopsError
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.db import opened_store as open_store

EXIT_USER_ERROR = 2
"""Exit status for a user mistake (bad input, unknown name, refused promotion)."""
EXIT_UNAVAILABLE = 3
"""Exit status when a dependency (tracking server, database) cannot be reached."""

console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    """Build settings from the environment; a bad value exits with a clear message."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        lines = [
            f"  TRAJOPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        err_console.print("[red]error:[/red] invalid configuration\n" + "\n".join(lines))
        sys.exit(EXIT_USER_ERROR)


def fail(exc: TrajopsError) -> NoReturn:
    """Print a domain error as one clear line (plus details) and exit non-zero."""
    err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
    for d in exc.details[:10]:
        loc = ".".join(str(p) for p in d.get("loc", []))
        if loc and loc not in exc.message:
            err_console.print(f"  {loc}: {d.get('msg', '')}", highlight=False)
    sys.exit(EXIT_UNAVAILABLE if exc.status_code == 503 else EXIT_USER_ERROR)


@contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """The operational store for one CLI command; database errors become ServiceUnavailable."""
    settings.ensure_home()
    with open_store(settings.resolved_database_url) as store:
        yield store

"""``trajops ui``: the MLflow UI on this project's tracking store, registry and artifacts.

The embedded store (``TRAJOPS_TRACKING_URI`` unset) is a SQLite file under ``TRAJOPS_HOME``
whose experiments keep their artifacts under ``<home>/artifacts``; a plain ``mlflow ui`` run
from another folder would open an empty ``./mlflow.db`` instead. A tracking *server* serves
its own UI: then this command only prints its address.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated
from urllib.parse import urlparse

import typer

from trajops.cli._common import err_console, load_settings, run_foreground
from trajops.errors import ValidationError
from trajops.settings import Settings

UI_HOST = "127.0.0.1"
"""Default address of the UI: loopback (the UI can change runs and the registry)."""
UI_PORT = 5000
"""Default port of the UI (MLflow's own)."""
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def mlflow_ui_command(settings: Settings, *, host: str, port: int) -> list[str]:
    """``mlflow server`` on the resolved tracking and registry URIs, artifacts under home."""
    artifacts = settings.artifact_root.as_uri()
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.resolved_tracking_uri,
        "--registry-store-uri", settings.resolved_registry_uri,
        "--default-artifact-root", artifacts,
        "--artifacts-destination", artifacts,
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def ui(
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to share it.")
    ] = UI_HOST,
    port: Annotated[int, typer.Option(help="Port to bind.")] = UI_PORT,
    print_command: Annotated[
        bool,
        typer.Option("--print-command", help="Print the mlflow command instead of running it."),
    ] = False,
) -> None:
    """Open the MLflow UI on this project's runs and registry.

    Runs `mlflow server` on the resolved tracking and registry URIs (see `trajops config
    show`) with the artifacts under TRAJOPS_HOME, and prints its URL. With a remote tracking
    server, prints the server's address: it serves the UI itself.
    """
    if not 1 <= port <= 65535:
        raise ValidationError(
            f"--port must be between 1 and 65535, got {port}",
            details=[{"loc": ["port"], "msg": "out of range"}],
        )
    settings = load_settings()
    tracking = settings.resolved_tracking_uri
    if urlparse(tracking).scheme in {"http", "https"}:
        typer.echo(f"the tracking server serves the MLflow UI: {tracking}")
        return
    command = mlflow_ui_command(settings, host=host, port=port)
    if print_command:
        typer.echo(shlex.join(command))
        return
    settings.ensure_home()
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    if host not in _LOOPBACK:
        err_console.print(
            f"[yellow]warning:[/yellow] the MLflow UI on {host} has no authentication: anyone "
            "who reaches the port can read and change runs and the registry",
            highlight=False,
        )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"MLflow UI on http://{shown}:{port} (tracking store {tracking}); Ctrl-C stops")
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    raise typer.Exit(run_foreground(command, env=env))

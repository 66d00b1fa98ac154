"""``trajops dashboard``: the operations dashboard (Streamlit) as a subprocess."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from trajops.cli._common import load_settings, run_foreground
from trajops.errors import ValidationError

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
"""The Streamlit script."""


def streamlit_command(*, host: str, port: int) -> list[str]:
    """``streamlit run`` on the app: headless, no usage statistics, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--runner.magicEnabled",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def dashboard(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default TRAJOPS_DASHBOARD_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (default TRAJOPS_DASHBOARD_PORT).")
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(help="Prediction service base URL (default TRAJOPS_DASHBOARD_API_URL)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="The dashboard's API key, used only with sign-in off (TRAJOPS_DASHBOARD_LOGIN="
            "false; default TRAJOPS_DASHBOARD_API_KEY; prefer the variable: options show in "
            "the process list)."
        ),
    ] = None,
    refresh: Annotated[
        float | None,
        typer.Option(
            help="Seconds between automatic refreshes, 0 = off (default "
            "TRAJOPS_DASHBOARD_REFRESH_S)."
        ),
    ] = None,
) -> None:
    """Serve the operations dashboard (Streamlit).

    People sign in (users of `trajops users`, or single sign-on) and act by role: models,
    traffic, accuracy, experiments, drift, alerts, trajectories, people and keys.
    """
    if port is not None and not 1 <= port <= 65535:
        raise ValidationError(
            f"--port must be between 1 and 65535, got {port}",
            details=[{"loc": ["port"], "msg": "out of range"}],
        )
    if refresh is not None and refresh < 0:
        raise ValidationError(
            f"--refresh must be >= 0, got {refresh}",
            details=[{"loc": ["refresh"], "msg": "negative"}],
        )
    overrides = {
        "TRAJOPS_DASHBOARD_HOST": host,
        "TRAJOPS_DASHBOARD_PORT": None if port is None else str(port),
        "TRAJOPS_DASHBOARD_API_URL": api_url,
        "TRAJOPS_DASHBOARD_API_KEY": api_key,
        "TRAJOPS_DASHBOARD_REFRESH_S": None if refresh is None else str(refresh),
    }
    # The app reads its settings from the environment it inherits.
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    settings = load_settings()  # a bad value exits here with the variable named
    if not settings.dashboard_api_url.startswith(("http://", "https://")):
        raise ValidationError(
            f"the API URL must start with http:// or https://, got "
            f"{settings.dashboard_api_url!r} (--api-url / TRAJOPS_DASHBOARD_API_URL)",
            details=[{"loc": ["api_url"], "msg": "not an http(s) URL"}],
        )
    if importlib.util.find_spec("streamlit") is None:
        raise ValidationError(
            "the dashboard needs Streamlit, which this installation lacks: "
            "pip install 'trajops[dashboard]' (the serve image leaves it out; compose runs the "
            "dashboard from the trajops-dashboard image)",
            details=[{"loc": ["dashboard"], "msg": "streamlit not installed"}],
        )
    command = streamlit_command(host=settings.dashboard_host, port=settings.dashboard_port)
    typer.echo(
        f"dashboard on http://{settings.dashboard_host}:{settings.dashboard_port} "
        f"reading {settings.dashboard_api_url}",
        err=True,
    )
    raise typer.Exit(run_foreground(command, env=dict(os.environ)))

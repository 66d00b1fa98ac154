"""``trajops serve``: run the prediction service."""

from __future__ import annotations

from typing import Annotated

import typer

from trajops.cli._common import load_settings


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default TRAJOPS_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (default TRAJOPS_PORT; 0 = any free port).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default TRAJOPS_WORKERS).")
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback address with authentication off (logged as a warning).",
        ),
    ] = False,
) -> None:
    """Serve the prediction API from the registry's models.

    Loads TRAJOPS_DEFAULT_MODEL first; POST /v1/predict, the API's docs at /docs.
    """
    from trajops.serving.server import run_server

    run_server(load_settings(), host=host, port=port, workers=workers, insecure=insecure)

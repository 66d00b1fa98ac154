"""The prediction service: FastAPI app factory, model pool, caches, metrics, server.

The names below load on first use (PEP 562): a uvicorn worker process imports
``trajops.serving.protocol`` while it unpickles its configuration, before it answers the
supervisor's health checks, and importing the app with it took 7-8 s on a loaded 2-core
machine (longer than uvicorn's default health-check timeout of 5 s).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trajops.serving.app import AppOptions, app_from_env, create_app
    from trajops.serving.server import run_server, serve_in_thread

_HOMES = {
    "AppOptions": "trajops.serving.app",
    "app_from_env": "trajops.serving.app",
    "create_app": "trajops.serving.app",
    "run_server": "trajops.serving.server",
    "serve_in_thread": "trajops.serving.server",
}

__all__ = ["AppOptions", "app_from_env", "create_app", "run_server", "serve_in_thread"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value

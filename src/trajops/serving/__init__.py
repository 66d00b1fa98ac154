"""The HTTP edge of the prediction service: app factory, middleware, routes, server.

Nothing below this package imports FastAPI or Starlette; the use cases live in
:mod:`trajops.prediction`, :mod:`trajops.monitoring` and :mod:`trajops.experiments`. The names
below load on first use (PEP 562), so ``import trajops.serving`` stays cheap for the CLI.
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

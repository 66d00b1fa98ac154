"""The prediction service: FastAPI app factory, model pool, caches, metrics, server."""

from trajops.serving.app import AppOptions, app_from_env, create_app
from trajops.serving.server import run_server, serve_in_thread

__all__ = ["AppOptions", "app_from_env", "create_app", "run_server", "serve_in_thread"]

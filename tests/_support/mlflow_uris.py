"""MLflow's process-wide tracking and registry URIs, set and restored exactly.

``mlflow.set_registry_uri`` also exports ``MLFLOW_REGISTRY_URI``, and code under test may call
it (``tracking.backend.connect``): tests that build their own registries pin both URIs while
they log, and give every module a clean slate afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def restored_mlflow_uris() -> Iterator[None]:
    """Undo any change to MLflow's global URIs (and their environment variables) on exit."""
    tracking = getattr(tracking_utils, "_tracking_uri", None)
    registry = getattr(registry_utils, "_registry_uri", None)
    env = {k: os.environ.get(k) for k in _ENV}
    try:
        yield
    finally:
        tracking_utils._tracking_uri = tracking  # type: ignore[attr-defined]
        registry_utils._registry_uri = registry  # type: ignore[attr-defined]
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def mlflow_uris(uri: str) -> Iterator[None]:
    """Tracking and registry both at ``uri`` inside the block, as before it afterwards."""
    with restored_mlflow_uris():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield

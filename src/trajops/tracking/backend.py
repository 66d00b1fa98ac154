"""The MLflow backend: connecting (embedded SQLite or a remote server), experiments, errors.

Every MLflow call of trajops goes through a client built by :func:`connect`, so an unreachable
tracking server is reported once, quickly and clearly, as :class:`TrackingUnavailable` instead
of a retry loop followed by a traceback.

Backends:
    * embedded (``TRAJOPS_TRACKING_URI`` unset): SQLite at ``<home>/mlflow.db``; experiments are
      created with their artifacts under ``<home>/artifacts``.
    * production: ``http(s)://`` an ``mlflow server`` (PostgreSQL backend store, proxied
      artifacts); experiments take the server's default artifact root.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trajops.errors import ModelNotFoundError, TrackingUnavailable, TrajopsError
from trajops.settings import Settings

PREFLIGHT_TIMEOUT_S = 5.0
"""Seconds the health check of a remote tracking server may take."""


def is_remote(uri: str) -> bool:
    """Whether ``uri`` points at a tracking *server* (rather than a local store)."""
    return urlparse(uri).scheme in {"http", "https"}


def _check_server(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        response = httpx.get(url, timeout=PREFLIGHT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise TrackingUnavailable(
            f"tracking server {uri} is unreachable: {exc.__class__.__name__}: {exc}",
            details=[{"loc": ["tracking_uri"], "msg": "unreachable"}],
        ) from None
    if response.status_code != 200:
        raise TrackingUnavailable(
            f"tracking server {uri} is not healthy: GET /health answered {response.status_code}",
            details=[{"loc": ["tracking_uri"], "msg": f"HTTP {response.status_code}"}],
        )


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured backend and return a client for it.

    Also sets the process-wide tracking and registry URIs, which the fluent API
    (``mlflow.start_run``, ``mlflow.pyfunc.log_model``) reads.

    Raises:
        TrackingUnavailable: the server does not answer its health check, or the embedded
            store cannot be opened.
    """
    tracking_uri = settings.resolved_tracking_uri
    registry_uri = settings.resolved_registry_uri
    if settings.tracking_uri is None:
        settings.ensure_home()
    for uri in {tracking_uri, registry_uri}:
        if is_remote(uri):
            _check_server(uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    with translate_errors(f"tracking store {tracking_uri}"):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        # Touch the store: opens (and for SQLite, migrates) the database now, not mid-training.
        client.search_experiments(max_results=1)
    return client


def _is_unreachable(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        marker in text
        for marker in (
            "API request to",
            "Max retries exceeded",
            "Connection refused",
            "OperationalError",
            "could not connect",
        )
    )


@contextlib.contextmanager
def translate_errors(what: str, *, not_found: str | None = None) -> Iterator[None]:
    """Turn MLflow and connection errors raised inside the block into trajops errors.

    Args:
        what: what was being reached, for the message ("tracking store ...").
        not_found: message of the :class:`ModelNotFoundError` raised for a missing resource;
            ``None`` lets a missing-resource error pass through as a generic one.
    """
    try:
        yield
    except TrajopsError:
        raise
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and not_found is not None:
            raise ModelNotFoundError(not_found) from None
        if _is_unreachable(exc):
            raise TrackingUnavailable(f"{what} is unavailable: {exc.message}") from None
        raise TrackingUnavailable(f"{what} failed: {exc.message}") from exc
    except (OSError, httpx.HTTPError) as exc:
        raise TrackingUnavailable(f"{what} is unavailable: {exc}") from exc


def ensure_experiment(settings: Settings, client: MlflowClient, name: str | None = None) -> str:
    """The id of experiment ``name`` (default: ``settings.experiment_name``), created if missing.

    An embedded store keeps the artifacts of new experiments under ``settings.artifact_root``;
    a remote server uses its own default artifact root (proxied artifacts).
    """
    name = name or settings.experiment_name
    with translate_errors(f"tracking store {settings.resolved_tracking_uri}"):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingUnavailable(
                    f"experiment {name!r} is deleted; restore it or choose another name",
                    details=[{"loc": ["experiment"], "msg": "deleted"}],
                )
            return str(experiment.experiment_id)
        location = None
        if not is_remote(settings.resolved_tracking_uri):
            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            location = settings.artifact_root.as_uri()
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException as exc:  # created by a concurrent caller (parallel tasks)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            again = client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

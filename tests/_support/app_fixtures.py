"""Fixtures of the tests that run the service: a real SQLite MLflow registry with CV models,
and apps on it. A ``conftest.py`` imports them where they are used.

Auth is on (the default): the shared client sends an admin key created through ``ApiKeys``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._support.api_keys import issue_key
from tests._support.mlflow_uris import restored_mlflow_uris
from tests._support.registry import RegistryInfo, build_registry
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings


@pytest.fixture(scope="module", autouse=True)
def _isolated_mlflow_uris() -> Iterator[None]:
    """Routes may point MLflow's global URIs at a test registry; no module sees another's."""
    with restored_mlflow_uris():
        yield


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> RegistryInfo:
    """Shared, read-only registry: versions 1 (champion) and 2 (challenger)."""
    return build_registry(tmp_path_factory.mktemp("registry"), versions=2)


def make_settings(registry: RegistryInfo, home: Path, **overrides: object) -> Settings:
    return Settings(home=home, tracking_uri=registry.uri, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(
    registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A real uvicorn server on the shared registry (no poller), and a client to it."""
    settings = make_settings(
        registry,
        tmp_path_factory.mktemp("home"),
        max_agents=50,
        max_body_bytes=20_000,
        rate_limit_burst=10_000,  # the junk test sends hundreds of requests at once
    )
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": token}) as http,
    ):
        yield http

"""The one stack every test of tests/stack shares (built and brought up once, taken down
at the end whatever happened)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests._support.podman import build_image, podman_env
from tests.stack._stack import (
    AIRFLOW_IMAGE,
    APP_IMAGE,
    DASHBOARD_IMAGE,
    PROFILES,
    SERVICES,
    TAG,
    Stack,
    bring_up,
    write_env_file,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Images built; the core stack, the dashboard and Airflow up; a first champion, an admin key."""
    env = podman_env(TAG)
    started = time.monotonic()
    build_image("--tag", APP_IMAGE, env=env, tag=TAG)
    for extra, image in (("dashboard", DASHBOARD_IMAGE), ("airflow", AIRFLOW_IMAGE)):
        build_image("--extras", extra, "--app-image", APP_IMAGE, "--tag", image, env=env, tag=TAG)
    for service in SERVICES:
        build_image("--service", service, env=env, tag=TAG)
    path, settings = write_env_file(tmp_path_factory.mktemp("stack"))
    stack = Stack(f"trajops-stack-{uuid.uuid4().hex[:6]}", env, path, settings)
    stack.phase("images", started)
    try:
        bring_up(stack)
        yield stack
    finally:
        stack.compose(*PROFILES, "down", "-v", timeout=300)

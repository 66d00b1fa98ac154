"""The image of ``deploy/Containerfile``, built for real with podman and run.

``scripts/build-image.sh`` builds it offline: a local Debian base (debootstrap) and a host-side
wheelhouse, both cached under ``build/container``, plus podman's layer cache, so a rebuild
after a source change only rebuilds the trajops wheel. The image's own ``trajops`` then trains
and registers a model and creates an API key in a named volume, and the image's entrypoint
serves it on a published port: it runs as the non-root user, ``/readyz`` answers 200 and a
prediction succeeds. Skips, with the reason printed, only where podman cannot run at all.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests._support.podman import build_image, podman, timed
from tests._support.podman import podman_env as podman_environment
from tests._support.services import free_port

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

TAG = "localhost/trajops:container-test"
UID = "10001"
SERVE_IMAGE_MAX_MB = 2100
"""A bound against regressions of the serve image's size: 2,010 MB measured (2,380 MB before
Streamlit left it and torch's tests went). Issue 34's goal of 1,000 MB is not met: torch,
Evidently's stack and MLflow's server take the rest (docs/deployment.md, "Image size")."""


def _timed(label: str, started: float) -> None:
    timed("container test", label, started)


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    """The environment podman runs with here (deploy/containers.conf), or a skip with why."""
    return podman_environment("container test")


@pytest.fixture(scope="module")
def image(podman_env: dict[str, str]) -> str:
    """The API image, built by scripts/build-image.sh (cached base and wheelhouse)."""
    output = build_image("--tag", TAG, env=podman_env, tag="container test", timeout=780)
    size_mb = int(re.search(r"image \S+: (\d+) MB", output).group(1))  # type: ignore[union-attr]
    assert size_mb <= SERVE_IMAGE_MAX_MB, f"the serve image grew to {size_mb} MB"
    return TAG


@pytest.fixture
def volume(podman_env: dict[str, str]) -> Iterator[str]:
    """A fresh named volume for the image's TRAJOPS_HOME, removed afterwards."""
    name = f"trajops-test-{uuid.uuid4().hex[:10]}"
    created = podman("volume", "create", name, env=podman_env)
    assert created.returncode == 0, created.stderr
    yield name
    podman("volume", "rm", "--force", name, env=podman_env)


def _run_cli(image: str, volume: str, *args: str, env: dict[str, str], timeout: float) -> str:
    """``trajops ARGS`` in a throwaway container of ``image`` on ``volume``; returns stdout."""
    done = podman(
        "run", "--rm", "-v", f"{volume}:/var/lib/trajops", "--entrypoint", "trajops",
        image, *args, env=env, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"trajops {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def test_image_metadata(image: str, podman_env: dict[str, str]) -> None:
    """Non-root user, HEALTHCHECK kept (docker format), `trajops serve` as the entrypoint."""
    inspected = podman("image", "inspect", image, env=podman_env)
    assert inspected.returncode == 0, inspected.stderr
    inspected_image = json.loads(inspected.stdout)[0]
    config = inspected_image["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["trajops", "serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    health = inspected_image.get("Healthcheck") or {}
    assert "/healthz" in " ".join(health.get("Test", [])), inspected_image.keys()
    assert not any(e.startswith("PIP_CERT") for e in config.get("Env", [])), "CA leaked in"


def test_image_carries_its_sbom(image: str, podman_env: dict[str, str]) -> None:
    """The CycloneDX SBOM written at build time lists the serve image's packages, no more."""
    read = podman(
        "run", "--rm", "--network", "none", "--entrypoint", "cat", image,
        "/opt/trajops/share/sbom/trajops.cdx.json", env=podman_env,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    sbom = json.loads(read.stdout)
    assert sbom["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in sbom["components"]}
    assert {"trajops", "torch", "mlflow", "fastapi"} <= names
    assert not names & {"streamlit", "apache-airflow", "cyclonedx-bom"}, "not in the serve image"


def test_image_serves_predictions(image: str, volume: str, podman_env: dict[str, str]) -> None:
    started = time.monotonic()
    _run_cli(
        image, volume, "demo", "--no-serve", "--epochs", "1", "--scenes", "3", "--agents", "8",
        "--steps", "60", env=podman_env, timeout=420,
    )  # fmt: skip
    _timed("train + register + promote in the image", started)
    token = _run_cli(
        image, volume, "keys", "create", "--name", "container-test", "--scopes", "predict",
        env=podman_env, timeout=120,
    ).strip().splitlines()[-1]  # fmt: skip

    port = free_port()
    name = f"trajops-test-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    run = podman(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{volume}:/var/lib/trajops", image, env=podman_env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    try:
        base = f"http://127.0.0.1:{port}"
        ready = _wait_ready(f"{base}/readyz", name, podman_env, timeout_s=240)
        _timed("container start until /readyz 200", started)
        assert ready["checks"]["model"]["ok"] is True

        status = podman("exec", name, "cat", "/proc/1/status", env=podman_env).stdout
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {UID}, f"PID 1 runs as uid {uids}, not the image's non-root user"

        walker = [[0.5 * i, 0.0] for i in range(8)]
        body = {"agents": [{"agent_id": "ped-1", "positions": walker}]}
        refused = httpx.post(f"{base}/v1/predict", json=body, timeout=30)
        assert refused.status_code == 401, refused.text
        answer = httpx.post(
            f"{base}/v1/predict", json=body, headers={"X-API-Key": token}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        (prediction,) = answer.json()["predictions"]
        assert prediction["agent_id"] == "ped-1"
        assert len(prediction["positions"]) == 12
        # a straight walker keeps walking forward (x grows), whatever model won the demo
        assert prediction["positions"][-1][0] > walker[-1][0]

        health = podman("healthcheck", "run", name, env=podman_env, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        podman("rm", "--force", "--time", "5", name, env=podman_env, timeout=60)


def _wait_ready(url: str, name: str, env: dict[str, str], *, timeout_s: float) -> dict[str, dict]:
    """Poll ``url`` until 200 while container ``name`` runs; its logs on failure."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                return dict(answer.json())
            last = f"{answer.status_code} {answer.text[:500]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        state = podman("inspect", "--format", "{{.State.Running}}", name, env=env).stdout.strip()
        if state != "true":
            break
        time.sleep(1.0)
    logs = podman("logs", "--tail", "60", name, env=env)
    pytest.fail(f"{url} not ready ({last}); container logs:\n{logs.stdout}{logs.stderr}")

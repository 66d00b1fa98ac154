"""podman for the tests that build and run images (tests/container, tests/stack).

Every call runs with deploy/containers.conf (runc, the ulimits this kind of host grants,
netavark for container DNS), as scripts/build-image.sh does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def podman_env(tag: str) -> dict[str, str]:
    """The environment podman runs with here, or a skip with the reason printed."""
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "containers.conf")}
    reason = None
    if shutil.which("podman") is None:
        reason = "podman is not installed (scripts/install-system-deps.sh installs it)"
    else:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", env=env, timeout=60)
        if info.returncode != 0:
            reason = f"podman cannot run here: {info.stderr.strip()[-500:]}"
    if reason:
        print(f"[{tag}] skipped: {reason}")
        pytest.skip(reason)
    return env


def podman(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``podman ARGS``, its output captured (the caller checks the exit status)."""
    return subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def timed(tag: str, label: str, started: float) -> float:
    """Print how long a phase took since ``started``; returns the seconds."""
    seconds = time.monotonic() - started
    print(f"[{tag}] {label}: {seconds:.1f} s")
    return seconds


def build_image(*args: str, env: dict[str, str], tag: str, timeout: float = 900) -> str:
    """``scripts/build-image.sh ARGS``, its step lines printed; returns its output."""
    started = time.monotonic()
    build = subprocess.run(
        ["bash", "scripts/build-image.sh", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in build.stdout.splitlines():
        if line.startswith("[build-image"):
            print(line)
    timed(tag, f"build-image.sh {' '.join(args)}", started)
    assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]
    return build.stdout

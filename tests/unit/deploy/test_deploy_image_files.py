"""The files around the image: the Containerfile lints clean (hadolint), the compose nginx
entrypoint renders deploy/nginx.conf into a config nginx accepts, and the wheelhouse completion
finds what another Python's markers need."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests._support.nginx import nginx_binary

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def test_containerfiles_pass_hadolint() -> None:
    """The trajops image and the third-party service images (deploy/images/*)."""
    hadolint = Path(sys.executable).parent / "hadolint"
    files = [DEPLOY / "Containerfile", *sorted((DEPLOY / "images").glob("*/Containerfile"))]
    assert len(files) == 6  # trajops; extras; postgres, redis, nginx, prometheus
    done = subprocess.run(
        [str(hadolint), "--no-color", *map(str, files)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_containerfile_shape() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    stages = [ln.split()[-1] for ln in text.splitlines() if ln.startswith("FROM ")]
    assert stages[-1] == "runtime" and {"deps", "builder"} <= set(stages)
    runtime = text.split("AS runtime", 1)[1]
    assert "USER 10001:10001" in runtime and "HEALTHCHECK" in runtime
    assert 'ENTRYPOINT ["trajops", "serve"]' in runtime
    assert "COPY src" not in runtime, "the runtime stage gets the built wheel, not the sources"
    ignore = (ROOT / ".containerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!src/"]


def test_nginx_entrypoint_renders_a_valid_config(tmp_path: Path) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/install-system-deps.sh installs it)")
    env = {
        **os.environ,
        "PATH": f"{Path(nginx).parent}:{os.environ['PATH']}",
        "NGINX_TEMPLATE": str(DEPLOY / "nginx.conf"),
        "NGINX_RUN_DIR": str(tmp_path),
        "NGINX_UPSTREAM": "127.0.0.1:18001 127.0.0.1:18002",  # a rollout's explicit list
    }
    done = subprocess.run(
        ["sh", str(DEPLOY / "nginx" / "entrypoint.sh"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    rendered = (tmp_path / "nginx.conf").read_text()
    assert rendered.count("server 127.0.0.1:18001 max_fails=1") == 1
    assert rendered.count("server 127.0.0.1:18002 max_fails=1") == 1
    assert "127.0.0.1:8001" not in rendered and "/var/lib/nginx" not in rendered
    assert "client_max_body_size 2000000;" in rendered  # the shipped limits are kept


def _wheel(folder: Path, name: str, requires: list[str]) -> None:
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", f"Name: {name}\nVersion: 1.0\n{meta}")


def test_wheelhouse_missing_follows_the_target_pythons_markers(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "wheelhouse_missing", DEPLOY / "wheelhouse_missing.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _wheel(
        tmp_path,
        "redis",
        ['async-timeout>=4; python_full_version < "3.11.3"', 'hiredis; extra == "hiredis"'],
    )
    _wheel(tmp_path, "app", ["redis>=5", 'pytest; extra == "test"'])
    old = {**module.environment(), "python_full_version": "3.11.2"}
    new = {**old, "python_full_version": "3.11.7"}
    assert module.missing(tmp_path, ["app"], old) == ["async-timeout>=4"]
    assert module.missing(tmp_path, ["app"], new) == []
    assert module.missing(tmp_path, ["app[test]", "redis[hiredis]"], new) == ["hiredis", "pytest"]
    assert json.loads(json.dumps(module.environment()))["implementation_name"] == "cpython"

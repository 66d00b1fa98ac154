"""Settings reach uvicorn worker processes through the environment, unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trajops.errors import ValidationError
from trajops.serving.server import run_server, settings_to_env
from trajops.settings import Settings


def test_settings_survive_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(
        home=tmp_path,
        redis_url="redis://127.0.0.1:6379/3",  # type: ignore[arg-type]
        port=8123,
        poll_interval_s=0.25,
        default_model="challenger",
        max_coordinate=55.5,
    )
    env = settings_to_env(original)
    assert env["TRAJOPS_REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert env["TRAJOPS_TRACKING_URI"] is None
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    rebuilt = Settings()
    assert rebuilt.model_dump() == original.model_dump()
    assert rebuilt.redis_url is not None
    assert rebuilt.redis_url.get_secret_value() == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("kwargs", "msg"), [({"port": 70000}, "port"), ({"workers": 0}, "workers")]
)
def test_run_server_refuses_bad_options(kwargs: dict[str, int], msg: str) -> None:
    with pytest.raises(ValidationError, match=msg):
        run_server(Settings(), **kwargs)  # type: ignore[arg-type]


def test_a_worker_unpickles_its_protocol_without_importing_the_app() -> None:
    """A uvicorn worker imports the protocol class while it unpickles its configuration, before
    it answers the supervisor's health checks; the package must not pull in the app then."""
    code = (
        "import sys, trajops.serving.protocol, trajops.serving.server as s; "
        "print('trajops.serving.app' in sys.modules, s.WORKER_HEALTHCHECK_S)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["False", "30"]
    from trajops.serving import create_app  # the package's names still resolve, lazily

    assert create_app.__module__ == "trajops.serving.app"

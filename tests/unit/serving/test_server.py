"""Settings reach uvicorn worker processes through the environment, unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajops.errors import ValidationError
from trajops.serving.server import check_exposure, run_server, settings_to_env
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


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example"])
def test_auth_off_beyond_loopback_is_refused_unless_insecure(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(auth_enabled=False)
    with pytest.raises(ValidationError, match="--insecure"):
        check_exposure(settings, host, insecure=False)
    with caplog.at_level("WARNING", logger="trajops.serving.server"):
        check_exposure(settings, host, insecure=True)
    assert "INSECURE" in caplog.text and host in caplog.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1"])
def test_auth_off_on_loopback_and_auth_on_anywhere_are_accepted(host: str) -> None:
    check_exposure(Settings(auth_enabled=False), host, insecure=False)
    check_exposure(Settings(auth_enabled=True), "0.0.0.0", insecure=False)


def test_the_cli_refuses_an_open_bind_without_auth(tmp_path: Path) -> None:
    env = {**os.environ, "TRAJOPS_HOME": str(tmp_path), "TRAJOPS_AUTH_ENABLED": "false"}
    trajops = str(Path(sys.executable).with_name("trajops"))
    result = subprocess.run(
        [trajops, "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--insecure" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

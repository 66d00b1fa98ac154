"""The end of ``trajops demo``: the printed key and ``curl`` example work against the server."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._support.app_fixtures import make_settings
from tests._support.registry import RegistryInfo
from trajops.cli.demo import create_demo_key, curl_example, print_access, tracks_example
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import AuditEntry


def test_printed_curl_example_predicts(registry: RegistryInfo, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    settings = make_settings(registry, tmp_path / "home")
    token = create_demo_key(settings)
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url:
        command = curl_example(url, token)
        assert f"-H 'X-API-Key: {token}'" in command
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
        out = json.loads(done.stdout)
        assert out["model"]["version"] == "1" and len(out["predictions"][0]["positions"]) == 12
        frame = subprocess.run(  # a shell line: its frame time comes from `date`
            ["bash", "-c", tracks_example(url, token)], capture_output=True, text=True, timeout=30
        )
        first = json.loads(frame.stdout)
        assert first["predictions"] == [] and first["waiting"][0]["agent_id"] == "ped-1"
        wrong = shlex.split(curl_example(url, token[:-1] + "x"))
        refused = json.loads(subprocess.run(wrong, capture_output=True, text=True).stdout)
        assert refused["error"]["code"] == "unauthenticated"
    store = Store(settings.resolved_database_url)
    try:
        with store.session() as s:
            events = [e.event for e in s.query(AuditEntry).order_by(AuditEntry.id)]
    finally:
        store.dispose()
    assert events[0] == "keys.create", "the demo key's creation is in the audit trail"


def test_the_demo_prints_its_key_and_curl_without_serving_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trajops demo --no-serve`` ends like the serving demo: the MLflow UI, a key (alone on
    its line) and a curl that uses it, plus how to start the service."""
    for var in ("TRAJOPS_DATABASE_URL", "TRAJOPS_HOST"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(home=tmp_path / "home", port=8123)
    token = print_access(settings, serving=False)
    out = capsys.readouterr().out.splitlines()
    assert token in out, "the key alone on its line"
    [curl, tracks] = [line for line in out if line.startswith("curl ")]
    assert curl == curl_example("http://127.0.0.1:8123", token)
    assert tracks == tracks_example("http://127.0.0.1:8123", token)
    text = "\n".join(out)
    assert "`trajops serve`" in text and "`trajops ui`" in text
    assert text.count(token) == 3  # the key line and the two curls, nowhere else


def test_the_demo_gives_the_dashboard_an_admin_who_can_sign_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard asks people to sign in: the demo's first run creates ``admin`` and prints
    its password once, on its own line after the sign-in hint; a second run keeps the users."""
    from trajops.security.users import Users

    monkeypatch.delenv("TRAJOPS_DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path / "home")
    print_access(settings, serving=False)
    out = capsys.readouterr().out.splitlines()
    hint = next(i for i, line in enumerate(out) if "sign in as admin" in line)
    password = out[hint + 1]
    store = Store(settings.resolved_database_url)
    try:
        assert Users(store).verify("admin", password).role.value == "admin"
    finally:
        store.dispose()
    print_access(settings, serving=False)  # again: no second admin, no password printed
    assert "sign in as" not in capsys.readouterr().out

"""Production backend: a real ``mlflow server`` on its own PostgreSQL database, proxied artifacts.

train -> register -> promote (gated) -> refused -> forced -> rollback, all through the server;
the alias history is read back from PostgreSQL itself; a stopped server is a clear error.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests._support.mlflow_server import BIN, PrivateMlflowServer
from tests._support.services import shared_pg_available, temp_database
from trajops.errors import PromotionRefused, TrackingUnavailable
from trajops.monitoring.reference import PROFILE_PATH
from trajops.registry.adapter import Registry
from trajops.registry.history import EVENT_TAG_PREFIX, read_history
from trajops.registry.promotion import EvalSetConfig, promote, rollback
from trajops.settings import Settings
from trajops.tracking.datasets import DataSplits
from trajops.training.run import TrainSpec, train_run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not shared_pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running"
    ),
]

EVAL = EvalSetConfig(n_scenes=1, n_agents=12, n_steps=100)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateMlflowServer, str]]:
    root = tmp_path_factory.mktemp("mlflow-server")
    with temp_database("trajops_mlflow") as db_url:
        srv = PrivateMlflowServer(root, backend_store_uri=db_url)
        try:
            srv.start()
            yield srv, db_url
        finally:
            srv.kill()


def test_train_register_promote_rollback_through_the_server(
    server: tuple[PrivateMlflowServer, str],
    small_splits: DataSplits,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, db_url = server
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", srv.url)
    settings = Settings()
    cv = train_run(settings, TrainSpec(model="cv", register=True), small_splits)
    linear = train_run(settings, TrainSpec(model="linear", register=True), small_splits)
    assert (cv.version, linear.version) == (1, 2)
    assert not (tmp_path / "home" / "mlflow.db").exists()  # nothing went to the embedded store

    # Artifacts were proxied by the server into its artifact destination.
    profiles = list((srv.root / "artifacts").rglob("features.parquet"))
    assert len(profiles) == 2 and all(p.match(f"*/{PROFILE_PATH}") for p in profiles)

    registry = Registry.from_settings(settings)
    assert registry.get_version(2).tags["run_id"] == linear.run_id
    promote(registry, version=2, tolerance=0.02, reason="best ADE", actor="ci", config=EVAL)
    with pytest.raises(PromotionRefused, match="not_worse"):
        promote(registry, version=1, tolerance=0.02, config=EVAL)
    assert registry.aliases() == {"champion": 2}
    promote(
        registry, version=1, tolerance=0.02, force=True, reason="drill", actor="ci", config=EVAL
    )
    assert rollback(registry, reason="drill over", actor="ci").version == 2
    assert registry.resolve("champion").version == 2

    # The history lives in the server's PostgreSQL database, readable by any client.
    fresh = Registry.from_settings(Settings())
    assert [(e.action, e.to_version, e.forced) for e in read_history(fresh)] == [
        ("promote", 2, False),
        ("promote", 1, True),
        ("rollback", 2, False),
    ]
    with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
        rows = conn.execute(
            "SELECT value FROM registered_model_tags WHERE name = %s AND key LIKE %s ORDER BY key",
            (settings.model_name, f"{EVENT_TAG_PREFIX}%"),
        ).fetchall()
    assert [json.loads(r[0])["reason"] for r in rows] == ["best ADE", "drill", "drill over"]

    # The CLI sees the same registry.
    env = {**os.environ, "TRAJOPS_TRACKING_URI": srv.url, "TRAJOPS_HOME": str(tmp_path / "home")}
    listed = subprocess.run(
        [str(BIN / "trajops"), "models", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    assert payload["aliases"] == {"champion": 2}
    assert {v["version"]: v["run_id"] for v in payload["versions"]} == {
        1: cv.run_id,
        2: linear.run_id,
    }


def test_a_stopped_server_is_a_clear_error_and_changes_nothing(
    server: tuple[PrivateMlflowServer, str], tmp_path: Path
) -> None:
    srv, db_url = server
    srv.kill()
    settings = Settings(home=tmp_path, tracking_uri=srv.url)
    with pytest.raises(TrackingUnavailable, match="unreachable"):
        Registry.from_settings(settings)
    env = {**os.environ, "TRAJOPS_TRACKING_URI": srv.url, "TRAJOPS_HOME": str(tmp_path)}
    out = subprocess.run(
        [str(BIN / "trajops"), "models", "promote", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 3
    assert "unreachable" in out.stderr and "Traceback" not in out.stderr
    with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
        alias = conn.execute(
            "SELECT version FROM registered_model_aliases WHERE alias = 'champion'"
        ).fetchall()
    assert alias in ([(2,)], [])  # unchanged (empty when run alone)

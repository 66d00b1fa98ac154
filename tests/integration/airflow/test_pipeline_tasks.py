"""The pipeline task functions called directly (no Airflow): bad input, reruns, the callback.

They run in this process against real SQLite / PostgreSQL URLs and a real webhook receiver.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from tests._support.services import free_port
from trajops.errors import ConfigError, DataError, ValidationError
from trajops.pipelines import data, training
from trajops.pipelines.failure import default_args, notify_failure, resolve_failure
from trajops.pipelines.failure import failure_signal as signal_of
from trajops.settings import Settings

if TYPE_CHECKING:
    from tests.integration.airflow.conftest import Receiver

RUN_KEY = "trajops_training/manual__2026-03-02T00:00:00+00:00"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path))
    for var in ("TRAJOPS_DATABASE_URL", "TRAJOPS_PIPELINE_ROOT", "TRAJOPS_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_candidates_are_checked_and_deduplicated() -> None:
    assert training.candidates(models=["linear", "cv", "linear"]) == ["linear", "cv"]
    with pytest.raises(ValidationError, match="'xgb'"):
        training.candidates(models=["cv", "xgb"])
    with pytest.raises(ValidationError, match="non-empty"):
        training.candidates(models=[])


def test_extract_names_a_missing_source_or_fold(home: Path) -> None:
    with pytest.raises(DataError, match=r"/nowhere/tracks\.csv does not exist"):
        data.extract(run_key=RUN_KEY, source="/nowhere/tracks.csv")
    (home / "eth_ucy" / "eth" / "test").mkdir(parents=True)
    with pytest.raises(ValidationError, match="ETH/UCY root: give the fold"):
        data.extract(run_key=RUN_KEY, source=str(home / "eth_ucy"))


def test_data_tasks_write_the_workspace_once_and_validate_what_they_read(home: Path) -> None:
    sim = {"sim_scenes": 3, "sim_agents": 6, "sim_steps": 40}
    first = data.extract(run_key=RUN_KEY, **sim)
    train = Path(first["workspace"]) / "data" / "train.parquet"
    assert first["workspace"].startswith(str(home / "pipelines"))
    assert ":" not in first["run_key"] and first["rows"]["train"] > 0
    written = train.stat().st_mtime_ns
    assert data.extract(run_key=RUN_KEY, **sim) == first  # a retry reuses the files
    assert train.stat().st_mtime_ns == written
    other = data.extract(run_key=RUN_KEY + "-2", **sim)  # another run: other data
    assert other["seed"] != first["seed"]

    checked = data.validate(run_key=RUN_KEY)
    assert checked["agents"]["train"] >= 2 and len(checked["digests"]) == 3
    windows = data.build_features(run_key=RUN_KEY)["windows"]
    assert windows["train"] > 0 and windows["test"] > 0
    assert (Path(first["workspace"]) / "features" / "train.parquet").exists()

    train.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="unreadable Parquet"):
        data.validate(run_key=RUN_KEY)


def test_extract_and_validate_an_eth_ucy_fold(home: Path) -> None:
    root = os.environ.get("TRAJOPS_DATA_ROOT")
    if not root or not (Path(root) / "hotel" / "test").is_dir():
        pytest.skip("TRAJOPS_DATA_ROOT is not set to an ETH/UCY root (<root>/hotel/test)")
    summary = data.extract(run_key=RUN_KEY, source=root, fold="hotel")
    assert summary["name"] == "eth_ucy-hotel" and min(summary["rows"].values()) > 0
    checked = data.validate(run_key=RUN_KEY)
    assert checked["agents"]["test"] >= 2 and checked["agents"]["train"] > checked["agents"]["test"]


def test_tasks_need_their_upstream_files(home: Path) -> None:
    with pytest.raises(DataError, match="run the extract task of pipeline run never-extracted"):
        data.validate(run_key="never-extracted")


def test_start_experiment_refuses_a_bad_traffic_share(home: Path) -> None:
    promotion = {"alias": "challenger", "version": 2}
    with pytest.raises(ValidationError, match="challenger_traffic"):
        training.start_experiment(run_key=RUN_KEY, promotion=promotion, challenger_traffic=100)
    first_champion = {"alias": "champion", "version": 1}
    assert training.start_experiment(run_key=RUN_KEY, promotion=first_champion) == {
        "experiment_id": None,
        "versions": {},
        "created": False,
    }


def test_default_args_back_off_exponentially_with_a_float_multiplier() -> None:
    args = default_args(Settings(pipeline_retries=4, pipeline_retry_delay_s=30))
    assert args["retries"] == 4 and args["retry_delay"] == timedelta(seconds=30)
    # Airflow 3.3 reads this as a multiplier: True would mean 1.0, a constant delay.
    assert (
        args["retry_exponential_backoff"] == 2.0 and args["retry_exponential_backoff"] is not True
    )
    assert args["max_retry_delay"] == timedelta(minutes=30)
    assert args["execution_timeout"] == timedelta(hours=1)
    assert args["on_failure_callback"] is notify_failure
    assert args["on_success_callback"] is resolve_failure


def test_a_bad_setting_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAJOPS_PIPELINE_RETRIES", "-1")
    with pytest.raises(ConfigError, match="TRAJOPS_PIPELINE_RETRIES"):
        default_args()


def _context(error: Exception) -> dict[str, object]:
    ti = SimpleNamespace(
        dag_id="trajops_training", task_id="train", map_index=1, run_id="r1", try_number=4
    )
    return {"ti": ti, "exception": error}


def test_the_failure_alert_names_task_run_tries_and_error() -> None:
    signal = signal_of(_context(RuntimeError("boom")))
    assert signal.rule == "pipeline_failure" and signal.key == "trajops_training.train"
    assert signal.message == (
        "pipeline task trajops_training.train[1] failed after 4 tries in run r1: RuntimeError: boom"
    )
    assert signal.severity == "critical" and signal.context["try_number"] == 4


def test_the_callback_stores_and_notifies_or_notifies_directly_when_the_store_is_down(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajops.monitoring.alerts import AlertManager
    from trajops.store.db import Store

    monkeypatch.setenv("TRAJOPS_ALERT_WEBHOOK_URL", receiver.url)
    notify_failure(_context(RuntimeError("first")))
    stored = receiver.wait_for(lambda b: "first" in b["message"])
    assert stored["status"] == "firing" and isinstance(stored["id"], int)
    store = Store(Settings(home=home).resolved_database_url)
    try:
        assert [a["rule"] for a in AlertManager(store, [], cooldown_s=0).list()] == [
            "pipeline_failure"
        ]
    finally:
        store.dispose()

    # The store is down (nothing listens there): the alert still reaches the webhook.
    monkeypatch.setenv(
        "TRAJOPS_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    )
    notify_failure(_context(ConnectionError("store down")))
    direct = receiver.wait_for(lambda b: "store down" in b["message"])
    assert direct["rule"] == "pipeline_failure" and "id" not in direct


def test_a_task_that_succeeds_again_resolves_its_alert_and_a_failed_run_alerts(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajops.monitoring.alerts import AlertManager
    from trajops.store.db import Store

    monkeypatch.setenv("TRAJOPS_ALERT_WEBHOOK_URL", receiver.url)
    notify_failure(_context(RuntimeError("flaky")))
    resolve_failure({"ti": SimpleNamespace(dag_id="trajops_training", task_id="train")})
    resolved = receiver.wait_for(lambda b: b["status"] == "resolved")
    assert resolved["key"] == "trajops_training.train"
    resolve_failure({"ti": SimpleNamespace(dag_id="trajops_training", task_id="train")})  # no-op

    # A DAG-level callback (no task instance): the run as a whole failed.
    run = SimpleNamespace(run_id="scheduled__2026")
    notify_failure({"dag": SimpleNamespace(dag_id="trajops_monitoring"), "dag_run": run,
                    "reason": "timed_out"})  # fmt: skip
    whole = receiver.wait_for(lambda b: b["key"] == "trajops_monitoring.run")
    assert whole["message"] == "pipeline run trajops_monitoring scheduled__2026 failed: timed_out"
    store = Store(Settings(home=home).resolved_database_url)
    try:
        firing = AlertManager(store, [], cooldown_s=0).list(status="firing")
    finally:
        store.dispose()
    assert [a["key"] for a in firing] == ["trajops_monitoring.run"]

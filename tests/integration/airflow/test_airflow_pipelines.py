"""The trajops DAGs under Airflow 3: parsing, whole runs with ``dag.test()``, failures and retries.

Every run uses a real SQLite Airflow metadata database, the embedded trajops stores in a temp
folder, a real local webhook receiver for notifications and, for the outage, a private
PostgreSQL that is started only after the first try failed. DAG runs happen in a child process
(see conftest); ``seed_traffic`` below is called there between two runs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.airflow.conftest import Airflow, Receiver

TRAIN_CONF = {
    "models": ["cv", "linear"],
    "sim_scenes": 3,
    "sim_agents": 8,
    "sim_steps": 60,
    "challenger_traffic": 20.0,
}
D1, D2 = "2026-03-02T00:00:00+00:00", "2026-03-09T03:00:00+00:00"
DRIFT_URI = "trajops://monitoring/drift-alert"
XCOM_LIMIT = 2048
"""Bytes a task's return value may take in XCom: metadata only, never data."""

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(dag_id: str, logical_date: str, **conf: Any) -> dict[str, Any]:
    return {"action": "test", "dag_id": dag_id, "logical_date": logical_date, "conf": conf}


def states(result: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """``{task_id or task_id[i]: (state, try_number)}`` of one DAG run."""
    return {
        t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else ""): (
            t["state"],
            t["try_number"],
        )
        for t in result["tasks"]
    }


def seed_traffic(home: str, *, n: int, bad_feedback: int) -> dict[str, int]:
    """Served inputs of a faster crowd for champion v1, and feedback far from its forecasts.

    Runs in the DAG runner's process, between two monitoring runs.
    """
    import numpy as np

    from trajops.data.simulator import SimulationConfig, simulate
    from trajops.data.windows import WindowConfig, make_windows
    from trajops.monitoring.accuracy import record_feedback
    from trajops.store.db import Store
    from trajops.store.models import PredictionRecord

    crowd = simulate(SimulationConfig.faster_population(n_agents=24, n_steps=80, n_scenes=2))
    obs = make_windows(crowd, WindowConfig(t_pred=0, stride=4)).obs[:n]  # (n, T_obs, 2)
    forecast = np.repeat(obs[:, -1:], 12, axis=1)  # (n, T_pred, 2): standing still
    store = Store(f"sqlite:///{Path(home) / 'trajops.db'}")
    now = datetime.now(UTC)
    with store.session() as session:
        session.add_all(
            PredictionRecord(
                request_id=f"req-{i // 8}",
                created_at=now,
                model_name="trajectory-forecaster",
                model_version="1",
                agent_key=f"agent-{i}",
                inputs=obs[i].tolist(),
                outputs=forecast[i].tolist(),
                step_s=0.4,
                latency_ms=2.0,
            )
            for i in range(len(obs))
        )
    for i in range(bad_feedback):  # the crowd walked on 5 m away from the forecast
        record_feedback(
            store,
            request_id=f"req-{i // 8}",
            agent_key=f"agent-{i}",
            positions=(forecast[i] + 5.0).tolist(),
        )
    store.dispose()
    return {"predictions": len(obs), "feedback": bad_feedback}


def seed_production(home: str, *, n_windows: int) -> dict[str, int]:
    """Realised production forecasts in the home's store (runs in the DAG runner's process)."""
    from tests._support.production import seed_production as seed

    return {"windows": seed(f"sqlite:///{Path(home) / 'trajops.db'}", n_windows=n_windows)}


# --- parsing ------------------------------------------------------------------------------
def test_dagbag_parses_every_dag_with_its_graph_schedule_and_failure_handling(
    airflow: Airflow, tmp_path: Path
) -> None:
    bad = {**run("trajops_training", D1, models=["xgb"]), "expect_error": True}
    result, refused = airflow.run(
        [{"action": "dagbag"}, bad], airflow.env(TRAJOPS_HOME=str(tmp_path))
    )
    # A run with a bad parameter is refused before any task runs, naming what is wrong.
    assert refused["error"].startswith("ParamValidationError: Invalid input for param models")
    assert "'xgb' is not one of ['cv', 'linear', 'neural']" in refused["error"]
    assert not (tmp_path / "pipelines").exists()
    assert result["import_errors"] == {}
    dags = result["dags"]
    assert set(dags) == {
        "trajops_training",
        "trajops_retraining",
        "trajops_monitoring",
        "trajops_maintenance",
    }
    chain = ["extract", "validate", "build_features", "candidates", "train", "evaluate"]
    chain += ["register", "promote", "start_experiment"]
    for dag_id in ("trajops_training", "trajops_retraining"):
        tasks = dags[dag_id]["tasks"]
        assert {a: tasks[a] for a in chain[:-1]} == {a: [b] for a, b in pairwise(chain)}
        assert dags[dag_id]["mapped"] == ["train"]
    assert dags["trajops_training"]["schedule"] is None
    retraining = dags["trajops_retraining"]["schedule"]
    assert "AssetOrTimeSchedule" in retraining and "0 3 * * 1" in retraining
    assert DRIFT_URI in retraining
    assert dags["trajops_monitoring"]["schedule"] == "'@hourly'"
    assert dags["trajops_monitoring"]["outlets"] == {"signal_retraining": [DRIFT_URI]}
    assert dags["trajops_monitoring"]["tasks"] == {
        "drift": ["drift_alert_raised", "signal_retraining"],
        "drift_alert_raised": ["signal_retraining"],
        "signal_retraining": [],
        "online_accuracy": ["evaluate_alerts"],
        "evaluate_alerts": [],
    }
    assert dags["trajops_maintenance"]["schedule"] == "'@daily'"
    assert dags["trajops_maintenance"]["tasks"] == {
        "verify_audit": ["purge_retention"],
        "purge_retention": [],
    }
    for dag in dags.values():
        # Thin DAG files: every task is one trajops.pipelines function.
        assert dag["callables"] and all(
            c.startswith("trajops.pipelines.") for c in dag["callables"]
        )
        assert dag["retries"] == 2 and dag["retry_delay_s"] == 1.0  # from TRAJOPS_PIPELINE_*
        assert dag["backoff"] == 2.0 and dag["max_retry_delay_s"] == 5.0
        assert dag["timeout_s"] == 180.0
        assert dag["on_failure_callback"] == "notify_failure"
        assert dag["catchup"] is False and dag["max_active_runs"] == 1


# --- training, retraining, monitoring ----------------------------------------------------
@pytest.fixture(scope="module")
def trained(airflow: Airflow, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A first training (-> champion), a retraining (-> challenger + A/B) and its rerun."""
    home = tmp_path_factory.mktemp("trajops")
    env = airflow.env(TRAJOPS_HOME=str(home))
    actions = [
        run("trajops_training", D1, **TRAIN_CONF),
        run("trajops_retraining", D2, **TRAIN_CONF),
        run("trajops_retraining", D2, **TRAIN_CONF),
    ]
    results = airflow.run(actions, env, timeout=600)
    return {"home": home, "env": env, "results": results}


def test_training_promotes_a_first_champion_then_retraining_starts_an_ab_test(
    trained: dict[str, Any],
) -> None:
    first, second, _ = trained["results"]
    for result in (first, second):
        assert result["state"] == "success", states(result)
        assert all(s == "success" for s, _ in states(result).values()), states(result)
        for task, value in result["xcom"].items():
            assert len(json.dumps(value)) < XCOM_LIMIT, f"{task} put data in XCom"
    x1, x2 = first["xcom"], second["xcom"]
    assert {x1["train[0]"]["model"], x1["train[1]"]["model"]} == {"cv", "linear"}
    assert x1["build_features"]["windows"]["train"] > 0
    assert x1["evaluate"]["best"]["ade"] <= x1["evaluate"]["ranking"][-1]["ade"]
    assert x1["register"] == {
        "version": 1,
        "model": x1["evaluate"]["best"]["model"],
        "created": True,
    }
    assert x1["promote"]["alias"] == "champion" and x1["promote"]["changed"] is True
    assert x1["start_experiment"]["experiment_id"] is None  # nothing to compare with yet
    assert x2["register"]["version"] == 2 and x2["register"]["created"] is True
    assert x2["promote"] == {
        "alias": "challenger",
        "version": 2,
        "previous": None,
        "changed": True,
        "eval": "simulator",  # no production data yet
    }
    assert x1["extract"]["origin"] == x2["extract"]["origin"] == "simulator"
    assert x2["start_experiment"]["created"] is True
    assert x2["start_experiment"]["versions"] == {"control": 1, "treatment": 2}
    # Different runs simulate different crowds (the seed follows the run).
    assert x1["validate"]["digests"]["train"] != x2["validate"]["digests"]["train"]


def test_a_rerun_duplicates_no_mlflow_run_version_or_experiment(trained: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    _, second, rerun = trained["results"]
    assert rerun["state"] == "success", states(rerun)
    assert rerun["run_id"] == second["run_id"]
    x2, x3 = second["xcom"], rerun["xcom"]
    assert [x3[f"train[{i}]"]["reused"] for i in (0, 1)] == [True, True]
    assert {x3[f"train[{i}]"]["run_id"] for i in (0, 1)} == {
        x2[f"train[{i}]"]["run_id"] for i in (0, 1)
    }
    assert x3["register"] == {**x2["register"], "created": False}
    assert x3["promote"]["changed"] is False
    assert x3["start_experiment"] == {**x2["start_experiment"], "created": False}

    uri = f"sqlite:///{trained['home'] / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'trajectory-forecaster'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    model = client.get_registered_model("trajectory-forecaster")
    assert {k: int(v) for k, v in model.aliases.items()} == {"champion": 1, "challenger": 2}
    exp = client.get_experiment_by_name("trajectory-forecasting")
    runs = client.search_runs([exp.experiment_id], "tags.`trajops.kind` = 'training'")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}

    from trajops.experiments.repository import ExperimentRepository
    from trajops.store.db import Store

    store = Store(f"sqlite:///{trained['home'] / 'trajops.db'}")
    try:
        experiments = ExperimentRepository(store).list()
    finally:
        store.dispose()
    assert [(e.id, e.status) for e in experiments] == [
        (x2["start_experiment"]["experiment_id"], "running")
    ]


def test_monitoring_alerts_on_drift_and_accuracy_and_signals_retraining(
    trained: dict[str, Any], airflow: Airflow, receiver: Receiver
) -> None:
    env = {
        **trained["env"],
        "TRAJOPS_ALERT_WEBHOOK_URL": receiver.url,
        "TRAJOPS_DRIFT_WINDOW_SIZE": "200",
        "TRAJOPS_DRIFT_MIN_INPUTS": "100",
        "TRAJOPS_DRIFT_PERSISTENCE_K": "1",
        "TRAJOPS_DRIFT_PERSISTENCE_M": "1",
        "TRAJOPS_ALERT_MIN_FEEDBACK": "10",
    }
    seed = {
        "action": "call",
        "function": "test_airflow_pipelines:seed_traffic",
        "kwargs": {"home": str(trained["home"]), "n": 200, "bad_feedback": 16},
    }
    quiet, seeded, loud = airflow.run(
        [run("trajops_monitoring", D1), seed, run("trajops_monitoring", D2)], env, timeout=400
    )
    # No traffic yet: the drift run is skipped, nothing alerts, no retraining signal.
    assert quiet["state"] == "success", states(quiet)
    assert "skipped" in quiet["xcom"]["drift"]
    assert states(quiet)["signal_retraining"][0] == "skipped"
    assert seeded["returned"] == {"predictions": 200, "feedback": 16}

    assert loud["state"] == "success", states(loud)
    drift = loud["xcom"]["drift"]
    assert drift["dataset_drift"] is True and drift["alert"] is True
    assert drift["model_version"] == "1" and drift["drifted_features"]
    assert states(loud)["signal_retraining"] == ("success", 1)
    assert loud["xcom"]["signal_retraining"]["report_id"] == drift["id"]
    assert loud["xcom"]["online_accuracy"][0]["n"] == 16
    assert loud["xcom"]["evaluate_alerts"]["firing"] == ["version:1"]
    receiver.wait_for(lambda b: b["rule"] == "drift" and b["status"] == "firing")
    receiver.wait_for(lambda b: b["rule"] == "accuracy_degradation" and b["key"] == "version:1")

    # The asset event that schedules trajops_retraining (the scheduler would start it).
    events = airflow.query(
        "SELECT e.source_dag_id, e.source_task_id FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id WHERE a.uri = ?",
        DRIFT_URI,
    )
    assert events == [("trajops_monitoring", "signal_retraining")]
    queued = airflow.query(
        "SELECT q.target_dag_id FROM asset_dag_run_queue q "
        "JOIN asset a ON a.id = q.asset_id WHERE a.uri = ?",
        DRIFT_URI,
    )
    assert queued == [("trajops_retraining",)]


def test_training_and_retraining_harvest_production_data_and_gate_on_it(
    airflow: Airflow, tmp_path: Path
) -> None:
    """With realised forecasts in the store, no source: the DAGs harvest them, train on the
    earlier ones and the gate scores candidate and champion on the later, held-out ones."""
    env = airflow.env(TRAJOPS_HOME=str(tmp_path), TRAJOPS_GATE_MIN_PRODUCTION_WINDOWS="40")
    seed = {
        "action": "call",
        "function": "test_airflow_pipelines:seed_production",
        "kwargs": {"home": str(tmp_path), "n_windows": 640},
    }
    conf = {**TRAIN_CONF, "models": ["linear"]}
    _, first, second = airflow.run(
        [seed, run("trajops_training", D1, **conf), run("trajops_retraining", D2, **conf)],
        env,
        timeout=400,
    )
    for result in (first, second):
        assert result["state"] == "success", states(result)
        assert result["xcom"]["extract"]["origin"] == "production"
    x1, x2 = first["xcom"], second["xcom"]
    assert x1["promote"]["alias"] == "champion"
    assert x2["promote"]["alias"] == "challenger"
    assert x2["promote"]["eval"].startswith("production: ")  # held out by time, not simulated

    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    v2 = client.get_model_version("trajectory-forecaster", "2")
    assert v2.tags["gate.challenger.eval"].startswith("production: ")
    tags = client.get_run(v2.run_id).data.tags
    assert tags["harvest.split"] == "time" and tags["harvest.fingerprint"]


# --- failure handling ---------------------------------------------------------------------
def _audit_trail(home: Path, *, rows: int) -> None:
    from trajops.security.audit import AuditRecord, append_audit
    from trajops.store.db import Store

    store = Store(f"sqlite:///{home / 'trajops.db'}")
    try:
        append_audit(
            store,
            [
                AuditRecord(route="/v1/predict", method="POST", status=200, event="request")
                for _ in range(rows)
            ],
        )
    finally:
        store.dispose()


def test_a_task_that_keeps_failing_is_retried_then_fires_the_failure_callback(
    airflow: Airflow, receiver: Receiver, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from trajops.store.db import Store
    from trajops.store.models import Alert, AuditEntry

    _audit_trail(tmp_path, rows=3)
    store = Store(f"sqlite:///{tmp_path / 'trajops.db'}")
    with store.session() as session:  # someone edits an audit row behind the chain's back
        session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(status=500))
    env = airflow.env(TRAJOPS_HOME=str(tmp_path), TRAJOPS_ALERT_WEBHOOK_URL=receiver.url)

    (result,) = airflow.run([run("trajops_maintenance", D1)], env)

    assert result["state"] == "failed"
    assert states(result) == {
        "verify_audit": ("failed", 3),  # the first try and two retries
        "purge_retention": ("upstream_failed", 0),
    }
    alert = receiver.wait_for(lambda b: b["rule"] == "pipeline_failure")
    assert alert["key"] == "trajops_maintenance.verify_audit"
    assert alert["severity"] == "critical" and "TAMPERED at row 2" in alert["message"]
    assert alert["context"]["try_number"] == 3
    # The run as a whole failed too: the DAG-level callback raises its own alert.
    whole = receiver.wait_for(lambda b: b["key"] == "trajops_maintenance.run")
    assert whole["severity"] == "critical" and whole["status"] == "firing"
    time.sleep(0.5)
    task_alerts = [b for b in receiver.bodies if b["key"] == "trajops_maintenance.verify_audit"]
    assert len(task_alerts) == 1  # the last try only
    with store.session() as session:
        stored = session.query(Alert).filter(Alert.rule == "pipeline_failure").all()
        assert sorted(a.key for a in stored) == [
            "trajops_maintenance.run",
            "trajops_maintenance.verify_audit",
        ]
    store.dispose()


def test_a_task_failing_while_the_database_is_down_succeeds_on_retry(
    airflow: Airflow, receiver: Receiver, tmp_path: Path
) -> None:
    from tests._support.services import PrivatePostgres

    pg = PrivatePostgres()  # initialised, not started: the store is down
    try:
        env = airflow.env(
            TRAJOPS_HOME=str(tmp_path),
            TRAJOPS_DATABASE_URL=pg.url,
            TRAJOPS_ALERT_WEBHOOK_URL=receiver.url,
            TRAJOPS_PIPELINE_RETRIES="3",
            TRAJOPS_PIPELINE_RETRY_DELAY_S="4",
            TRAJOPS_PIPELINE_MAX_RETRY_DELAY_S="10",
        )
        proc = airflow.start([run("trajops_maintenance", D2)], env)
        deadline = time.monotonic() + 120
        waiting: list[tuple[Any, ...]] = []
        while not waiting and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            waiting = airflow.query(
                "SELECT try_number FROM task_instance WHERE dag_id = 'trajops_maintenance' "
                "AND task_id = 'verify_audit' AND state = 'up_for_retry'"
            )
        assert waiting, "verify_audit never waited for a retry"
        pg.start()  # the database comes back before the retry
        (result,) = airflow.finish(proc, timeout=240)
    finally:
        pg.cleanup()
    assert result["state"] == "success", states(result)
    tries = states(result)
    assert tries["verify_audit"][0] == "success" and tries["verify_audit"][1] >= 2
    assert tries["purge_retention"] == ("success", 1)
    assert result["xcom"]["verify_audit"]["checked"] >= 0
    assert result["xcom"]["purge_retention"]["dry_run"] is False
    assert not [b for b in receiver.bodies if b["rule"] == "pipeline_failure"]

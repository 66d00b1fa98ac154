"""A tracked training against a real SQLite MLflow store: what the run and the version hold."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from trajops.data.features import FEATURE_NAMES
from trajops.data.fingerprint import fingerprint
from trajops.errors import DataError, ModelNotFoundError, TrajopsError, ValidationError
from trajops.monitoring.reference import PROFILE_PATH, load_reference
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.tracking import artifacts as art
from trajops.tracking.backend import connect
from trajops.tracking.datasets import DataSplits
from trajops.training.run import STEPS, TrainSpec, train_loso, train_run


def test_a_registered_training_run_holds_params_metrics_artifacts_and_lineage(
    embedded_settings: Settings, small_splits: DataSplits, tmp_path: Path
) -> None:
    steps: list[str] = []
    result = train_run(
        embedded_settings,
        TrainSpec(model="linear", seed=5, register=True),
        small_splits,
        on_step=steps.append,
    )
    assert steps == list(STEPS)
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "linear" and params["seed"] == "5"
    assert {"model.alpha", "window.t_obs", "window.max_neighbours", "trajops_version"} <= set(
        params
    )

    metrics = run.data.metrics
    assert 0 < metrics["test_ade"] < metrics["test_fde"]
    assert metrics["test_min_ade_20"] <= metrics["test_ade"]
    for name in ("miss_rate", "collision_rate", "gt_collision_rate", "min_fde_miss_rate"):
        assert 0 <= metrics[f"test_{name}"] <= 1, name  # the field's metrics reach MLflow
    assert metrics["test_min_fde_miss_rate"] <= metrics["test_miss_rate"]
    assert 0 <= metrics["test_coverage_50"] <= metrics["test_coverage_90"] <= 1
    assert math.isfinite(metrics["test_kde_nll"])
    scenes = set(small_splits.test["scene"])
    assert {f"test_ade/scene/{s}" for s in scenes} <= set(metrics)
    assert any(k.startswith("test_ade/speed/") for k in metrics)
    horizon = client.get_metric_history(result.run_id, "test_horizon_error")
    assert [m.step for m in horizon] == list(range(1, 13))
    assert horizon[-1].value == pytest.approx(metrics["test_fde"])

    # Lineage: one input per split, digests = the fingerprints; full digests as run tags.
    inputs = {i.tags[0].value if i.tags else "": i for i in run.inputs.dataset_inputs}
    contexts = {
        t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"
    }
    assert contexts == {"training", "validation", "testing"}
    train_fp = fingerprint(small_splits.train)
    digests = {i.dataset.digest for i in inputs.values()}
    assert train_fp.digest[:32] in digests
    assert run.data.tags["data.digest"] == train_fp.digest
    assert run.data.tags["data.train.n_agents"] == str(train_fp.n_agents)

    # Artifacts.
    files = {f.path for f in client.list_artifacts(result.run_id)}
    assert {art.EVALUATION_PATH, art.MODEL_CARD_PATH, "plots", "reference"} <= files
    local = Path(client.download_artifacts(result.run_id, "", str(tmp_path)))
    evaluation = json.loads((local / art.EVALUATION_PATH).read_text())
    assert evaluation["ade"] == pytest.approx(metrics["test_ade"])
    assert len(evaluation["horizon"]) == 12
    profile = pd.read_parquet(local / PROFILE_PATH)
    assert list(profile.columns) == ["scene", *FEATURE_NAMES]
    assert len(profile) >= int(params["data.n_train_windows"])  # every served-style input
    calibration = json.loads((local / "reference" / "calibration.json").read_text())
    assert set(calibration["thresholds"]) <= set(FEATURE_NAMES)
    assert (local / art.TRAJECTORY_PLOT_PATH).stat().st_size > 1000
    assert (local / art.HORIZON_PLOT_PATH).read_bytes()[:4] == b"\x89PNG"
    assert "Model card" in (local / art.MODEL_CARD_PATH).read_text()

    # The version carries run id, data digest and metrics; it loads as the pyfunc contract.
    version = Registry.from_settings(embedded_settings).get_version(result.version or 0)
    assert version.run_id == result.run_id
    assert version.tags["data.digest"] == train_fp.digest
    assert version.metrics["test_ade"] == pytest.approx(metrics["test_ade"], abs=1e-6)
    reference = load_reference(Registry.from_settings(embedded_settings), "1").profile
    pd.testing.assert_frame_equal(reference, profile)
    with pytest.raises(ModelNotFoundError):
        load_reference(Registry.from_settings(embedded_settings), "2")
    loaded = mlflow.pyfunc.load_model(version.uri)
    assert loaded.unwrap_python_model().forecaster.name == "linear"


def test_the_neural_model_logs_one_loss_per_epoch(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    spec = TrainSpec(
        model="neural", epochs=2, model_params={"hidden": 16, "modes": 3, "patience": 5}
    )
    result = train_run(embedded_settings, spec, small_splits)
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(result.run_id, "train_loss")] == [0, 1]
    assert len(client.get_metric_history(result.run_id, "val_loss")) == 2
    assert client.get_run(result.run_id).data.params["model.epochs"] == "2"
    assert result.version is None


def test_a_training_that_fails_midway_is_failed_and_registers_nothing(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    # The experiment was created with an artifact location nobody can write (not even root):
    # the first artifact fails after params, lineage, fit and metrics were logged.
    client = connect(embedded_settings)
    experiment_id = client.create_experiment(
        embedded_settings.experiment_name, artifact_location="file:///proc/trajops-artifacts"
    )
    with pytest.raises(TrajopsError, match="failed writing to the tracking backend"):
        train_run(embedded_settings, TrainSpec(model="cv", register=True), small_splits)
    [run] = client.search_runs([experiment_id])
    assert run.info.status == "FAILED"
    assert "test_ade" in run.data.metrics  # it really got midway
    assert Registry.from_settings(embedded_settings).list_versions() == []


def test_bad_input_fails_before_any_run(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    with pytest.raises(ValidationError, match="unknown model"):
        train_run(embedded_settings, TrainSpec(model="transformer"), small_splits)
    tiny = DataSplits(
        name="tiny",
        source="/nowhere",
        train=small_splits.train[small_splits.train["frame"] < 50],
        val=small_splits.val,
        test=small_splits.test,
    )
    with pytest.raises(DataError, match="train split yields no windows"):
        train_run(embedded_settings, TrainSpec(model="cv"), tiny)
    client = MlflowClient()
    exp = client.get_experiment_by_name(embedded_settings.experiment_name)
    assert exp is not None and client.search_runs([exp.experiment_id]) == []


def test_loso_nests_one_run_per_fold_and_refuses_to_register(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    folds = [
        DataSplits(
            name=f"f{i}",
            source="/x",
            train=small_splits.train,
            val=small_splits.val,
            test=small_splits.test,
            fold=f"f{i}",
        )
        for i in range(2)
    ]
    with pytest.raises(ValidationError, match="--register"):
        train_loso(embedded_settings, TrainSpec(model="cv", register=True), folds)
    parent, results = train_loso(embedded_settings, TrainSpec(model="cv"), folds)
    client = MlflowClient()
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert {r.info.run_id for r in children} == {r.run_id for r in results}
    assert client.get_run(parent).data.metrics["test_ade_mean"] == pytest.approx(
        results[0].metrics["test_ade"]
    )

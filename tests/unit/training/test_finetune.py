"""Fine-tuning a registered version against a real SQLite MLflow store: where the weights
start, what is refused, and what the run and the version record."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from trajops.data.windows import make_windows
from trajops.errors import ModelNotFoundError, ValidationError
from trajops.models.neural import NeuralForecaster
from trajops.models.pyfunc import load_forecaster
from trajops.registry.adapter import Registry
from trajops.settings import Settings
from trajops.tracking.datasets import DataSplits
from trajops.training.finetune import FINE_TUNE_EPOCHS, FINE_TUNE_LR_FACTOR, resolve_init
from trajops.training.run import TrainSpec, build_model, train_run

SMALL_NET = {"hidden": 16, "modes": 2}


def _no_runs(settings: Settings) -> bool:
    client = MlflowClient()
    exp = client.get_experiment_by_name(settings.experiment_name)
    return exp is None or client.search_runs([exp.experiment_id]) == []


def test_a_fine_tuning_starts_from_the_registered_weights_and_records_its_source(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    source = train_run(
        embedded_settings,
        TrainSpec(model="neural", epochs=1, register=True, model_params=SMALL_NET),
        small_splits,
    )
    assert source.version == 1
    registry = Registry.from_settings(embedded_settings)
    registry.set_alias("champion", 1)
    # A zero learning rate: the fine-tuned model is the source, weight for weight.
    frozen = train_run(
        embedded_settings,
        TrainSpec(
            model="neural", epochs=1, register=True, init_from="champion", model_params={"lr": 0.0}
        ),
        small_splits,
    )
    assert frozen.version == 2
    test = make_windows(small_splits.test)
    preds = [
        load_forecaster(f"models:/{embedded_settings.model_name}/{v}").predict(
            test.obs, neighbours=test.neighbours
        )
        for v in (1, 2)
    ]
    np.testing.assert_array_equal(preds[0], preds[1])
    run = MlflowClient().get_run(frozen.run_id)
    assert run.data.params["init_from"] == "1"
    assert (run.data.tags["init_from"], run.data.tags["init_from.ref"]) == ("1", "champion")
    assert registry.get_version(2).tags["init_from"] == "1"

    # Defaults of a fine-tuning: fewer epochs and a smaller step than the source; the
    # architecture is the source's, whatever the defaults of a fresh model are.
    spec = TrainSpec(model="neural", init_from="v1")
    init = resolve_init(embedded_settings, model="neural", init_from="v1")
    assert init is not None and (init.version, init.ref) == (1, "v1")
    model = build_model(spec, embedded_settings, init=init)
    assert isinstance(model, NeuralForecaster)
    assert model.config.epochs == FINE_TUNE_EPOCHS
    assert model.config.lr == pytest.approx(2e-3 * FINE_TUNE_LR_FACTOR)
    assert (model.config.hidden, model.config.modes) == (16, 2)


def test_init_from_is_refused_before_any_run_when_it_cannot_apply(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    with pytest.raises(ValidationError, match="fine-tunes the neural model"):
        train_run(embedded_settings, TrainSpec(model="linear", init_from="1"), small_splits)
    with pytest.raises(ModelNotFoundError, match="has no version 1"):
        train_run(embedded_settings, TrainSpec(model="neural", init_from="1"), small_splits)
    assert _no_runs(embedded_settings)
    train_run(embedded_settings, TrainSpec(model="linear", register=True), small_splits)
    client = MlflowClient()
    exp = client.get_experiment_by_name(embedded_settings.experiment_name)
    assert exp is not None
    before = len(client.search_runs([exp.experiment_id]))
    with pytest.raises(ValidationError, match="v1 is a 'linear' model, not 'neural'"):
        train_run(embedded_settings, TrainSpec(model="neural", init_from="v1"), small_splits)
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        train_run(embedded_settings, TrainSpec(model="neural", init_from="7"), small_splits)
    with pytest.raises(ModelNotFoundError, match="no version with alias 'champion'"):
        train_run(embedded_settings, TrainSpec(model="neural", init_from="champion"), small_splits)
    assert len(client.search_runs([exp.experiment_id])) == before


def test_a_source_keeps_its_architecture(
    embedded_settings: Settings, small_splits: DataSplits
) -> None:
    train_run(
        embedded_settings,
        TrainSpec(model="neural", epochs=1, register=True, model_params=SMALL_NET),
        small_splits,
    )
    spec = TrainSpec(model="neural", epochs=1, init_from="1", model_params={"hidden": 32})
    with pytest.raises(ValidationError, match=r"cannot change hidden \(16 -> 32\)"):
        train_run(embedded_settings, spec, small_splits)
    loaded = load_forecaster(f"models:/{embedded_settings.model_name}/1")
    assert isinstance(loaded, NeuralForecaster) and loaded.config.hidden == 16

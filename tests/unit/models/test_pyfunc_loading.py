"""``load_forecaster`` reads weights and config only: a model artifact cannot run code."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests._support.mlflow_uris import restored_mlflow_uris
from trajops.errors import ModelLoadError
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import example_obs, load_forecaster, log_forecaster


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a hostile ``python_model.pkl`` does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A logged constant-velocity pyfunc, downloaded to a local folder."""
    with restored_mlflow_uris():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        with mlflow.start_run():
            info = log_forecaster(ConstantVelocity())
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "m"))
    return Path(local)


def test_a_hostile_pickle_is_never_unpickled(logged: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (logged / "python_model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    forecaster = load_forecaster(str(logged))
    assert not marker.exists()
    out = forecaster.predict(example_obs(2))  # (2, T_pred, 2)
    assert out.shape == (2, 12, 2) and np.isfinite(out).all()
    # The control: MLflow's own loader does run it, so the test above could fail.
    with pytest.raises(Exception):  # noqa: B017 - the payload is not a PythonModel
        mlflow.pyfunc.load_model(str(logged))
    assert marker.exists()


def test_unknown_forecaster_types_are_refused(logged: Path) -> None:
    header = next(logged.rglob("forecaster.json"))
    header.write_text(json.dumps({"type": "os.system"}))
    with pytest.raises(ModelLoadError, match="cannot load the forecaster"):
        load_forecaster(str(logged))


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    from trajops.models.linear import LinearForecaster
    from trajops.models.pyfunc import forecaster_from_folder

    folder = tmp_path / "model"
    (folder / "artifacts" / "forecaster" / "model").mkdir(parents=True)
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n"
        "      forecaster:\n        path: artifacts/forecaster\n"
    )
    (folder / "artifacts" / "forecaster" / "forecaster.json").write_text('{"type": "linear"}')
    weights = np.array([_Payload(tmp_path / "pwned")], dtype=object)
    np.savez(folder / "artifacts" / "forecaster" / "model" / "weights.npz", weights=weights)
    (folder / "artifacts" / "forecaster" / "model" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError):
        forecaster_from_folder(folder)
    assert not (tmp_path / "pwned").exists()
    assert LinearForecaster.name == "linear"


def test_artifact_paths_outside_the_model_are_refused(logged: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(next(logged.rglob("forecaster.json")).parent, outside)
    mlmodel = (logged / "MLmodel").read_text()
    (logged / "MLmodel").write_text(
        mlmodel.replace("path: artifacts/forecaster", f"path: {outside}")
    )
    with pytest.raises(ModelLoadError, match="outside the model"):
        load_forecaster(str(logged))


def test_a_folder_without_the_contract_is_refused(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(ModelLoadError, match="not a trajops forecaster pyfunc"):
        load_forecaster(str(tmp_path))

"""The MLflow pyfunc wrapper: the single model contract of trajops.

Training logs every forecaster as this pyfunc. ``mlflow models serve`` and
``mlflow.pyfunc.load_model`` load it as MLflow does; trajops code (the API, batch jobs, A/B
arms, the promotion gate and the pipelines) loads the forecaster inside it with
:func:`load_forecaster`.

Input frame (one row per agent)::

    scene_id (str) | agent_id (str) | x_0 .. x_7 (float64) | y_0 .. y_7 (float64)

Agents sharing a ``scene_id`` are one scene and are each other's neighbours. Params:
``num_samples`` (int, default 1) and ``seed`` (int, default 0, makes sampling reproducible).

Output frame (one row per agent and sample, agents in input order, samples ``0 .. K-1``)::

    scene_id | agent_id | sample (int) | x_0 .. x_11 | y_0 .. y_11

Code that forecasts NumPy arrays (the API, batch workers, the promotion gate) gets the plain
:class:`~trajops.models.base.Forecaster` behind a logged pyfunc one way, :func:`load_forecaster`,
which reads the weights and config and never unpickles the pyfunc; :func:`predict_frame` is the
frame logic the pyfunc runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from trajops import STEP_S, T_OBS, T_PRED, __version__
from trajops.data.windows import WindowConfig, neighbours_from_batch
from trajops.errors import ModelLoadError, ValidationError
from trajops.models import load_model, save_model
from trajops.models.base import Forecaster

X_OBS = [f"x_{i}" for i in range(T_OBS)]
Y_OBS = [f"y_{i}" for i in range(T_OBS)]
X_PRED = [f"x_{i}" for i in range(T_PRED)]
Y_PRED = [f"y_{i}" for i in range(T_PRED)]
INPUT_COLUMNS = ["scene_id", "agent_id", *X_OBS, *Y_OBS]
"""Columns of the pyfunc input frame, in order."""
OUTPUT_COLUMNS = ["scene_id", "agent_id", "sample", *X_PRED, *Y_PRED]
"""Columns of the pyfunc output frame, in order."""
DEFAULT_PARAMS: dict[str, Any] = {"num_samples": 1, "seed": 0}
"""Inference params of the signature, with their defaults."""
MAX_SAMPLES = 100
"""Most samples one prediction may ask for."""
ARTIFACT_KEY = "forecaster"
"""Key of the saved forecaster folder in the pyfunc's artifacts."""


def obs_to_frame(
    obs: np.ndarray, *, agent_ids: np.ndarray | list[str], scene_ids: np.ndarray | list[str]
) -> pd.DataFrame:
    """Build the pyfunc input frame from observed positions.

    Args:
        obs: ``(N, T_obs, 2)`` observed positions.
        agent_ids: ``(N,)`` agent ids.
        scene_ids: ``(N,)`` scene ids; agents of one scene are each other's neighbours.

    Returns:
        A frame with :data:`INPUT_COLUMNS`.
    """
    obs = np.asarray(obs, dtype=np.float64)  # (N, T_obs, 2)
    if obs.ndim != 3 or obs.shape[1:] != (T_OBS, 2):
        raise ValidationError(f"obs must have shape (N, {T_OBS}, 2), got {obs.shape}")
    if len(agent_ids) != len(obs) or len(scene_ids) != len(obs):
        raise ValidationError(
            f"{len(obs)} agents but {len(agent_ids)} agent ids and {len(scene_ids)} scene ids"
        )
    data: dict[str, Any] = {
        "scene_id": np.asarray(scene_ids).astype(str),
        "agent_id": np.asarray(agent_ids).astype(str),
    }
    for i in range(T_OBS):
        data[X_OBS[i]] = obs[:, i, 0]
    for i in range(T_OBS):
        data[Y_OBS[i]] = obs[:, i, 1]
    return pd.DataFrame(data, columns=INPUT_COLUMNS)


def frame_to_obs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read observed positions back from a pyfunc input frame.

    Args:
        df: a frame with :data:`INPUT_COLUMNS` (extra columns are ignored).

    Returns:
        ``obs (N, T_obs, 2)`` float64, ``agent_ids (N,)`` and ``scene_ids (N,)`` as str arrays.

    Raises:
        ValidationError: a missing column, a non-numeric or non-finite coordinate.
    """
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise ValidationError(
            f"input frame lacks column(s) {missing}",
            details=[{"loc": ["columns", c], "msg": "missing column"} for c in missing],
        )
    try:
        xs = df[X_OBS].to_numpy(dtype=np.float64)  # (N, T_obs)
        ys = df[Y_OBS].to_numpy(dtype=np.float64)  # (N, T_obs)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"coordinates must be numbers: {exc}") from None
    obs = np.stack([xs, ys], axis=-1)  # (N, T_obs, 2)
    bad = ~np.isfinite(obs)
    if bad.any():
        row, step, axis = (int(v) for v in np.argwhere(bad)[0])
        col = f"{'xy'[axis]}_{step}"
        raise ValidationError(
            f"non-finite coordinate in row {row}, column {col}",
            details=[{"loc": ["rows", row, col], "msg": "not a finite number"}],
        )
    agent_ids = df["agent_id"].astype(str).to_numpy()
    scene_ids = df["scene_id"].astype(str).to_numpy()
    return obs, agent_ids, scene_ids


def scene_neighbours(
    obs: np.ndarray, scene_ids: np.ndarray, *, max_neighbours: int | None = None
) -> np.ndarray:
    """Neighbours of each agent among the agents of its own scene.

    Args:
        obs: ``(N, T_obs, 2)`` observed positions.
        scene_ids: ``(N,)`` scene of each agent.
        max_neighbours: neighbour slots per agent (the window default when omitted).

    Returns:
        ``(N, K, T_obs, 2)`` neighbour positions, NaN-padded.
    """
    k = max_neighbours or WindowConfig().max_neighbours
    out = np.full((len(obs), k, obs.shape[1], 2), np.nan, np.float32)  # (N, K, T_obs, 2)
    for scene in pd.unique(scene_ids):
        idx = np.flatnonzero(scene_ids == scene)
        out[idx] = neighbours_from_batch(obs[idx], max_neighbours=k)
    return out


def predictions_to_frame(
    pred: np.ndarray, *, agent_ids: np.ndarray, scene_ids: np.ndarray
) -> pd.DataFrame:
    """Long output frame from predictions.

    Args:
        pred: ``(N, T_pred, 2)`` or ``(N, K, T_pred, 2)`` predicted positions.
        agent_ids: ``(N,)`` agent ids.
        scene_ids: ``(N,)`` scene ids.

    Returns:
        A frame with :data:`OUTPUT_COLUMNS`, ``N * K`` rows, agent-major.
    """
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim == 3:
        pred = pred[:, None]  # (N, 1, T_pred, 2)
    n, k = pred.shape[:2]
    flat = pred.reshape(n * k, pred.shape[2], 2)  # (N*K, T_pred, 2)
    data: dict[str, Any] = {
        "scene_id": np.repeat(np.asarray(scene_ids).astype(str), k),
        "agent_id": np.repeat(np.asarray(agent_ids).astype(str), k),
        "sample": np.tile(np.arange(k, dtype=np.int64), n),
    }
    for i in range(T_PRED):
        data[X_PRED[i]] = flat[:, i, 0]
    for i in range(T_PRED):
        data[Y_PRED[i]] = flat[:, i, 1]
    return pd.DataFrame(data, columns=OUTPUT_COLUMNS)


def _params(params: dict[str, Any] | None) -> tuple[int, int]:
    merged = {**DEFAULT_PARAMS, **(params or {})}
    try:
        num_samples, seed = int(merged["num_samples"]), int(merged["seed"])
    except (TypeError, ValueError):
        raise ValidationError("params num_samples and seed must be integers") from None
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValidationError(
            f"num_samples must be between 1 and {MAX_SAMPLES}, got {num_samples}",
            details=[{"loc": ["params", "num_samples"], "msg": "out of range"}],
        )
    return num_samples, seed


def predict_frame(
    forecaster: Forecaster, df: pd.DataFrame, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run a forecaster on a pyfunc input frame (what the pyfunc's ``predict`` does).

    Args:
        forecaster: a fitted forecaster.
        df: input frame with :data:`INPUT_COLUMNS`.
        params: ``num_samples`` and ``seed`` (see :data:`DEFAULT_PARAMS`).

    Returns:
        Output frame with :data:`OUTPUT_COLUMNS`.
    """
    num_samples, seed = _params(params)
    obs, agent_ids, scene_ids = frame_to_obs(df)  # (N, T_obs, 2)
    if len(obs) == 0:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    neighbours = scene_neighbours(obs, scene_ids)  # (N, K, T_obs, 2)
    pred = forecaster.predict(obs, neighbours=neighbours, num_samples=num_samples, seed=seed)
    return predictions_to_frame(pred, agent_ids=agent_ids, scene_ids=scene_ids)


class TrajopsPythonModel(PythonModel):
    """A trajops forecaster as an MLflow pyfunc.

    Attributes:
        forecaster: the loaded :class:`~trajops.models.base.Forecaster` (after ``load_context``).
    """

    def __init__(self) -> None:
        self.forecaster: Forecaster | None = None

    def load_context(self, context: Any) -> None:
        """Load the forecaster from the ``forecaster`` artifact folder."""
        try:
            self.forecaster = load_model(Path(context.artifacts[ARTIFACT_KEY]))
        except (KeyError, ImportError, OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the forecaster artifact: {exc}") from exc

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Forecast every agent of ``model_input``; see the module docstring for the frames."""
        if self.forecaster is None:
            raise ModelLoadError("the pyfunc was not loaded (load_context was not called)")
        return predict_frame(self.forecaster, model_input, params)


def forecaster_from_folder(model_dir: Path) -> Forecaster:
    """The forecaster of a downloaded trajops pyfunc, read without running any of its code.

    Only the model's ``MLmodel`` (YAML, parsed safely) and its ``forecaster`` artifact are
    read: a JSON header naming one of the known forecaster types, a JSON config and weights
    that cannot carry code (``.npz`` without pickles, a torch state dict loaded with
    ``weights_only=True``). The pickled ``python_model.pkl`` that ``mlflow models serve``
    unpickles is never opened here.

    Raises:
        ModelLoadError: no forecaster artifact, a path outside the model, an unknown
            forecaster type or weights that do not load.
    """
    import yaml

    root = model_dir.resolve()
    try:
        mlmodel = yaml.safe_load((root / "MLmodel").read_text())
        relative = mlmodel["flavors"]["python_function"]["artifacts"][ARTIFACT_KEY]["path"]
        folder = (root / str(relative)).resolve()
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        raise ModelLoadError("not a trajops forecaster pyfunc (no forecaster artifact)") from None
    if not folder.is_relative_to(root):
        raise ModelLoadError("the forecaster artifact points outside the model folder")
    try:
        return load_model(folder)
    except Exception as exc:  # unknown type, missing file, refused pickle: never a crash
        raise ModelLoadError(f"cannot load the forecaster: {type(exc).__name__}: {exc}") from None


def load_forecaster(
    model_uri: str, *, dst: Path | None = None, tracking_uri: str | None = None
) -> Forecaster:
    """Download a logged trajops pyfunc and return its forecaster: the one way to load it.

    Nothing in the artifacts is executed (:func:`forecaster_from_folder`).

    Args:
        model_uri: where the pyfunc is (``models:/name/3``, a registry download URI, a run
            artifact URI or a local folder).
        dst: empty local folder for the artifacts (a temporary one when omitted).
        tracking_uri: the tracking backend (``mlflow-artifacts:`` URIs need it).

    Raises:
        ModelLoadError: the artifacts cannot be fetched or are not a trajops pyfunc.
    """
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri,
            dst_path=None if dst is None else str(dst),
            tracking_uri=tracking_uri,
        )
    except Exception as exc:  # MLflow raises many types for a missing model
        raise ModelLoadError(f"cannot fetch {model_uri}: {type(exc).__name__}") from None
    return forecaster_from_folder(Path(local))


def signature() -> ModelSignature:
    """The pyfunc's signature: input and output columns and the inference params."""
    coords = [ColSpec("double", c) for c in (*X_OBS, *Y_OBS)]
    outputs = [ColSpec("double", c) for c in (*X_PRED, *Y_PRED)]
    ids = [ColSpec("string", "scene_id"), ColSpec("string", "agent_id")]
    return ModelSignature(
        inputs=Schema([*ids, *coords]),
        outputs=Schema([*ids, ColSpec("long", "sample"), *outputs]),
        params=ParamSchema([ParamSpec(k, "long", v) for k, v in DEFAULT_PARAMS.items()]),
    )


def example_obs(n: int = 2) -> np.ndarray:
    """``(n, T_obs, 2)`` deterministic example walkers (for input examples and smoke tests)."""
    t = np.arange(T_OBS, dtype=np.float64) * STEP_S  # (T_obs,) seconds
    out = np.empty((n, T_OBS, 2))  # (n, T_obs, 2)
    for i in range(n):
        heading = 2.0 * np.pi * i / max(n, 1)
        speed = 1.2 + 0.1 * i  # m/s, a typical walking speed
        out[i, :, 0] = 1.5 * i + speed * t * np.cos(heading)
        out[i, :, 1] = speed * t * np.sin(heading)
    return out


def pip_requirements(forecaster: Forecaster) -> list[str]:
    """The minimal requirements of a logged forecaster (torch only for torch models)."""
    reqs = [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    reqs.append(f"pandas=={pd.__version__}")
    if type(forecaster).__module__.endswith(".neural"):
        import torch

        reqs.append(f"torch=={torch.__version__.split('+')[0]}")
    reqs.append(f"trajops=={__version__}")
    return reqs


def log_forecaster(
    model: Forecaster,
    *,
    name: str = "model",
    input_example_n: int = 2,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log a fitted forecaster as a trajops pyfunc inside the active MLflow run.

    Args:
        model: a fitted forecaster.
        name: the logged model's name in the run.
        input_example_n: agents in the logged input example (one scene).
        registered_model_name: also register a new version of this registered model.

    Returns:
        The logged model's info (``model_uri``, ``signature``, ``registered_model_version``...).
    """
    example = obs_to_frame(
        example_obs(input_example_n),
        agent_ids=[str(i) for i in range(input_example_n)],
        scene_ids=["example"] * input_example_n,
    )
    predict_frame(model, example)  # fail here, not at serving time, if the model cannot predict
    with tempfile.TemporaryDirectory(prefix="trajops-pyfunc-") as tmp:
        folder = Path(tmp) / ARTIFACT_KEY
        save_model(model, folder)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name=name,
            python_model=TrajopsPythonModel(),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=signature(),
            input_example=example,
            pip_requirements=pip_requirements(model),
            registered_model_name=registered_model_name,
            metadata={"trajops_version": __version__, "forecaster": model.name},
        )
    return info

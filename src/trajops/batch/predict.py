"""Tracks -> observation windows -> forecasts: the vectorised core of a batch partition.

Shared by the Dask tasks and by the in-process baseline of ``bench/batch.py``, so the benchmark
compares the same work with and without Dask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from trajops import T_OBS, T_PRED
from trajops.data.windows import WindowConfig, make_windows
from trajops.errors import ModelLoadError
from trajops.models.base import Forecaster
from trajops.models.pyfunc import X_PRED, Y_PRED

OUTPUT_COLUMNS = ("scene_id", "agent_id", "start_frame", "sample", *X_PRED, *Y_PRED)
"""Columns of a batch output file: the pyfunc output plus the window's first frame."""


@dataclass(frozen=True)
class PredictConfig:
    """How a batch job forecasts.

    Attributes:
        num_samples: K forecasts per window (the pyfunc's ``num_samples``).
        seed: base seed; partition ``i`` uses ``seed + i`` so a resumed job reproduces itself.
        stride: steps between the starts of two windows of one agent (1: every window).
        max_neighbours: neighbour slots per window (the scene-aware models read them).
    """

    num_samples: int = 1
    seed: int = 0
    stride: int = 1
    max_neighbours: int = 16

    def window_config(self) -> WindowConfig:
        """Observation-only windows: ``T_obs`` positions, no future."""
        return WindowConfig(
            t_obs=T_OBS, t_pred=0, stride=self.stride, max_neighbours=self.max_neighbours
        )


def output_schema() -> pa.Schema:
    """Arrow schema of the output files (also used for partitions without windows)."""
    fields = [
        pa.field("scene_id", pa.string()),
        pa.field("agent_id", pa.string()),
        pa.field("start_frame", pa.int64()),
        pa.field("sample", pa.int64()),
    ]
    fields += [pa.field(c, pa.float32()) for c in (*X_PRED, *Y_PRED)]
    return pa.schema(fields)


def predict_tracks(
    forecaster: Forecaster, tracks: pd.DataFrame, *, config: PredictConfig, seed: int
) -> tuple[pa.Table, int]:
    """Forecast every observation window of a validated tracks frame.

    Args:
        forecaster: a loaded forecaster (the registered pyfunc's ``forecaster``).
        tracks: validated tracks (``scene, frame, agent_id, x, y``).
        config: sampling and windowing.
        seed: sampling seed for this call.

    Returns:
        The output table (:data:`OUTPUT_COLUMNS`, one row per window and sample) and the
        number of windows.

    Raises:
        ModelLoadError: the model returned the wrong shape or non-finite values.
    """
    if len(tracks) == 0:
        return output_schema().empty_table(), 0
    ws = make_windows(tracks, config.window_config())
    n, k = len(ws), config.num_samples
    if n == 0:
        return output_schema().empty_table(), 0
    obs = ws.traj  # (N, T_obs, 2): t_pred = 0, the whole window is observed
    pred = forecaster.predict(obs, neighbours=ws.neighbours, num_samples=k, seed=seed)
    pred = np.asarray(pred, dtype=np.float32)  # (N, T_pred, 2) or (N, K, T_pred, 2)
    expected = (n, T_PRED, 2) if k == 1 else (n, k, T_PRED, 2)
    if pred.shape != expected or not np.isfinite(pred).all():
        raise ModelLoadError(
            f"model returned {pred.shape} (finite: {bool(np.isfinite(pred).all())}), "
            f"expected {expected}"
        )
    flat = pred.reshape(n * k, T_PRED, 2)  # (N*K, T_pred, 2), window-major
    columns: list[pa.Array] = [
        pa.array(np.repeat(ws.scene.astype(str), k), pa.string()),
        pa.array(np.repeat(ws.agent_id.astype(str), k), pa.string()),
        pa.array(np.repeat(ws.start_frame.astype(np.int64), k)),
        pa.array(np.tile(np.arange(k, dtype=np.int64), n)),
    ]
    columns += [pa.array(np.ascontiguousarray(flat[:, i, 0])) for i in range(T_PRED)]
    columns += [pa.array(np.ascontiguousarray(flat[:, i, 1])) for i in range(T_PRED)]
    return pa.Table.from_arrays(columns, schema=output_schema()), n

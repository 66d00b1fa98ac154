"""Drift of one scene against its own served past.

The model's reference profile mixes the training recordings; a change inside one scene (its
agents walk 20 % faster) can hide in that mix when other scenes already span the new values.
Served scenes are known only by pseudonym (``PredictionRecord.scene_key``) and never match a
training recording, so a scene's reference is built from that scene's own earliest served
inputs and calibrated on them (:func:`fit_scene_detector`).

The monitored window is the scene's latest inputs, consecutive as served. Its agents are not
in the reference, so each null window of the calibration is a consecutive stretch of the
reference of the window's length scored against the reference rows of *other* agents (the
held-out stretches of :func:`~trajops.monitoring.drift.calibrate` share agents with the rest
of the reference: an agent is served at many consecutive steps, and one scene has few agents,
so such a null is too narrow and same-scene windows alarm far above the target rate). Slow
changes of the scene beyond the reference's span (density over the day) are not in the null:
see docs/monitoring.md, "Drift per scene", for what this means on ETH/UCY.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from trajops.data.features import FEATURE_NAMES
from trajops.errors import NotEnoughData
from trajops.monitoring._calibration import Calibration, thresholds_from_null
from trajops.monitoring._scores import exceed, finite_values, get_method
from trajops.monitoring.alerts import AlertManager
from trajops.monitoring.drift import DriftDetector, features_from_obs
from trajops.monitoring.drift_job import INPUT_COLUMNS, ServedInputs, read_inputs, record_run
from trajops.monitoring.harvest import FORECAST_TIME
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import PredictionRecord

REFERENCE_WINDOWS = 4
"""Default reference size, in drift windows (``reference_size = 4 * window``)."""
METHOD, MIN_DRIFTED, ALARM_RATE = "wasserstein", 2, 0.05
"""Score and dataset rule, as the model references' defaults (see docs/monitoring.md)."""


def scene_inputs(
    store: Store,
    scene_key: str,
    *,
    until: datetime | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> ServedInputs:
    """A scene's served inputs, oldest first.

    Args:
        store: the operational store.
        scene_key: the scene's pseudonym.
        until: only inputs made before this forecast time (:data:`FORECAST_TIME`).
        limit: at most this many: the earliest ones, or with ``newest`` the latest ones.
        newest: take the latest inputs instead of the earliest.

    Returns:
        The inputs in row (id) order.
    """
    stmt = select(*INPUT_COLUMNS).where(PredictionRecord.scene_key == scene_key)
    if until is not None:
        stmt = stmt.where(FORECAST_TIME < until)  # noqa: SIM300 (a SQL column, not a constant)
    order = PredictionRecord.id.desc() if newest else PredictionRecord.id
    stmt = stmt.order_by(order)
    if limit is not None:
        stmt = stmt.limit(limit)
    found = read_inputs(store, stmt)
    return ServedInputs(*(a[::-1] for a in found)) if newest else found


def agent_null(
    values: np.ndarray, agents: np.ndarray, *, window_size: int, n_boot: int, seed: int
) -> np.ndarray:
    """Scores of consecutive reference stretches against the rows of the other agents.

    Args:
        values: ``(N, F)`` reference features, time-ordered.
        agents: ``(N,)`` agent of each row.
        window_size: rows per null window (at most ``N``).
        n_boot: null windows.
        seed: random seed.

    Returns:
        ``(n_boot, F)`` scores; 0 where a side has no finite value.
    """
    rng = np.random.default_rng(seed)
    stat = get_method(METHOD)
    n, n_features = values.shape
    orders = []  # per column: finite rows, sorted by value
    for j in range(n_features):
        keep = np.flatnonzero(np.isfinite(values[:, j]))
        orders.append(keep[np.argsort(values[keep, j], kind="stable")])
    codes = pd.factorize(pd.Series(agents, dtype=object))[0]  # (N,) agent -> 0..A-1
    out = np.zeros((n_boot, n_features))  # (B, F)
    for b in range(n_boot):
        start = int(rng.integers(0, n - window_size + 1))
        rows = slice(start, start + window_size)
        seen = np.zeros(codes.max() + 1, bool)
        seen[codes[rows]] = True
        others = ~seen[codes]  # (N,) rows of agents not in the window
        for j, order in enumerate(orders):
            rest = values[order[others[order]], j]  # sorted, finite
            cur = np.sort(finite_values(values[rows, j]))
            if len(rest) and len(cur):
                out[b, j] = stat.score(rest, cur)
    return out


def fit_scene_detector(
    reference: pd.DataFrame,
    *,
    agents: np.ndarray,
    window_size: int,
    n_boot: int = 200,
    seed: int = 0,
) -> DriftDetector:
    """Calibrate a detector on one scene's reference for windows of ``window_size``
    consecutive inputs of agents the reference has not seen (:func:`agent_null`), with the
    default dataset rule (2 features, 5 % of null windows).

    Args:
        reference: the scene's served features, time-ordered, columns as
            :data:`trajops.data.features.FEATURE_NAMES` (others ignored).
        agents: ``(N_ref,)`` agent (key) of each reference row.
        window_size: inputs per monitored window (at most the reference's rows).
        n_boot: null windows.
        seed: random seed of the calibration.
    """
    names = list(FEATURE_NAMES)
    profile = reference[names].reset_index(drop=True)
    null = agent_null(
        profile.to_numpy(np.float64),
        np.asarray(agents),
        window_size=window_size,
        n_boot=n_boot,
        seed=seed,
    )  # (B, F)
    rng = np.random.default_rng(seed)
    thresholds, level = thresholds_from_null(
        null, alarm_rate=ALARM_RATE, quantile=None, min_drifted=MIN_DRIFTED, rng=rng
    )
    fired = exceed(null, thresholds[None, :], get_method(METHOD)).sum(axis=1) >= MIN_DRIFTED
    q50, q95 = np.quantile(null, [0.5, 0.95], axis=0)  # (F,) each
    calibration = Calibration(
        method=METHOD,
        window_size=window_size,
        thresholds={c: float(t) for c, t in zip(names, thresholds, strict=True)},
        min_drifted=MIN_DRIFTED,
        alarm_rate=ALARM_RATE,
        quantile=level,
        n_boot=n_boot,
        holdout_share=window_size / len(profile),
        n_blocks=1,
        n_reference=len(profile),
        seed=seed,
        null_alarm_rate=float(fired.mean()),
        null_quantiles={
            c: {"q50": float(a), "q95": float(b), "max": float(m)}
            for c, a, b, m in zip(names, q50, q95, null.max(axis=0), strict=True)
        },
    )
    return DriftDetector(profile, calibration)


def _check_sizes(
    settings: Settings, *, n_ref: int, n_cur: int, overlap: int, asked: tuple[int | None, int]
) -> None:
    """Raise NotEnoughData unless both sides are large enough and apart.

    ``asked`` is the reference size (None: all before a time) and window size asked for.
    """
    need = max(settings.drift_min_inputs, 2 * n_cur)
    problems = []
    if n_cur < settings.drift_min_inputs:
        problems.append(f"the window has {n_cur} < {settings.drift_min_inputs} inputs")
    if overlap:
        total = (asked[0] or n_ref) + asked[1]
        problems.append(
            f"the window's {n_cur} latest inputs include {overlap} of the reference's {n_ref} "
            f"(the scene has {n_ref + n_cur - overlap} inputs, a run needs {total})"
        )
    elif n_ref < need:
        problems.append(f"the reference has {n_ref} < {need} inputs (2 windows, at least)")
    if problems:
        raise NotEnoughData(
            "not enough served inputs of this scene for a drift run: "
            + "; ".join(problems)
            + " (serve more traffic, or lower --reference-size/--window)",
            details=[{"loc": ["scene"], "msg": p} for p in problems],
        )


def run_scene_drift(
    settings: Settings,
    store: Store,
    *,
    scene_key: str,
    window: int | None = None,
    reference_size: int | None = None,
    reference_until: datetime | None = None,
    alerts: AlertManager | None = None,
    log_to_mlflow: bool = False,
) -> dict[str, Any]:
    """Compare a scene's latest served inputs with its own earliest; store, alert on and
    return the summary (as :func:`trajops.monitoring.drift_job.run_drift`, plus ``scene_key``).

    Args:
        settings: drift window, minimum inputs and persistence rule.
        store: the operational store.
        scene_key: the scene's pseudonym (``PredictionRecord.scene_key``).
        window: the scene's latest inputs to judge (default ``settings.drift_window_size``).
        reference_size: the scene's first inputs that form the reference (default
            ``4 * window``; with ``reference_until``, the first ones before it, default all).
        reference_until: the reference is the scene's inputs before this forecast time.
        alerts: raises or resolves the ``drift`` alert keyed ``scene:<scene_key>``.
        log_to_mlflow: log the run to the monitoring experiment.

    Raises:
        NotEnoughData: fewer than ``settings.drift_min_inputs`` inputs in the window, a
            reference under two windows, or a window that overlaps the reference.
    """
    size = window or settings.drift_window_size
    if reference_size is None and reference_until is None:
        reference_size = REFERENCE_WINDOWS * size
    ref = scene_inputs(store, scene_key, until=reference_until, limit=reference_size)
    cur = scene_inputs(store, scene_key, limit=size, newest=True)
    overlap = int(np.sum(cur.id <= ref.id.max())) if len(ref.id) else 0
    _check_sizes(
        settings,
        n_ref=len(ref.id),
        n_cur=len(cur.id),
        overlap=overlap,
        asked=(reference_size, size),
    )
    reference = features_from_obs(ref.obs, step_s=ref.step_s, scene_ids=ref.request_id)
    current = features_from_obs(cur.obs, step_s=cur.step_s, scene_ids=cur.request_id)
    detector = fit_scene_detector(reference, agents=ref.agent_key, window_size=len(current))
    result = detector.run(current)
    return record_run(
        settings,
        store,
        result,
        model_version=None,
        scene_key=scene_key,
        alerts=alerts,
        log_to_mlflow=log_to_mlflow,
        extra={
            "scene_key": scene_key,
            "reference_until": reference_until.isoformat() if reference_until else None,
        },
    )

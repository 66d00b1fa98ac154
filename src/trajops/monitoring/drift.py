"""Input drift: Evidently reports of served feature windows against the reference profile.

The reference is a feature profile (columns :data:`trajops.data.features.FEATURE_NAMES`) built
the way served inputs look (:func:`served_features`). Evidently's default threshold (normed
Wasserstein distance 0.1) flags most same-distribution windows of 500 trajectories, so
thresholds are *calibrated* per feature on the reference itself (:func:`calibrate`) and handed
to Evidently as ``per_column_threshold``: the report's own tests carry the calibrated verdicts.

Dataset drift rule: a window has drifted when at least ``min_drifted`` features (default 2)
score at or above their thresholds; the thresholds are set jointly so that same-distribution
windows of the calibrated size trip the rule in about ``alarm_rate`` (default 5 %) of cases.
Two features, not one: on ETH/UCY validation data one feature (neighbour density: recordings
thin out towards their end) drifts on its own with no change in motion. :class:`Persistence`
then asks for ``k`` drifted windows among the last ``m`` before an alert.

Missing values: the neighbour features are NaN for an input with no neighbour observed (a
one-agent request). A feature is scored on the inputs that have a value, on both sides, and
is not tested at all (``skipped_features``) when the window holds fewer than
:data:`MIN_OBSERVED` values of it: clients that send one agent per request say nothing about
crowd density. How many inputs had a neighbour is reported instead (``neighbour_share``).
"""

from __future__ import annotations

import json
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from trajops.data.features import missing_neighbours
from trajops.errors import TrajopsWarning, ValidationError
from trajops.monitoring._calibration import Calibration, calibrate
from trajops.monitoring._scores import METHODS, exceed, finite_values, get_method, numeric_frame
from trajops.monitoring._served import features_from_obs, sample_requests, served_features

__all__ = [
    "METHODS",
    "Calibration",
    "DriftDetector",
    "DriftResult",
    "Persistence",
    "calibrate",
    "features_from_obs",
    "sample_requests",
    "save_html",
    "served_features",
    "write_summary",
]

MIN_OBSERVED = 10
"""Fewest values of a feature a window needs for it to be tested (missing values excluded)."""


def neighbour_share(features: pd.DataFrame) -> float | None:
    """Share of inputs with a neighbour observed (None without the feature or the rows)."""
    if "min_neighbour_dist" not in features.columns or len(features) == 0:
        return None
    return float(np.isfinite(features["min_neighbour_dist"].to_numpy(dtype=np.float64)).mean())


@dataclass(frozen=True)
class DriftResult:
    """One drift run: a window of served inputs against the reference profile.

    Attributes:
        dataset_drift: at least ``min_drifted`` features scored at or above their thresholds.
        drifted_features: features over their thresholds, in profile order.
        scores: feature -> Evidently drift score (normed Wasserstein distance by default).
        thresholds: feature -> calibrated threshold used by the report.
        n_reference: reference rows.
        n_current: rows in the monitored window.
        method: Evidently stat test.
        min_drifted: the dataset rule's feature count.
        skipped_features: features with fewer than :data:`MIN_OBSERVED` finite values in the
            window (not tested; e.g. the neighbour features of one-agent requests).
        neighbour_share: share of the window's inputs with a neighbour observed.
        reference_neighbour_share: the same share in the reference.
        snapshot: the Evidently ``Snapshot`` (HTML, JSON, tests).
    """

    dataset_drift: bool
    drifted_features: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    n_reference: int
    n_current: int
    method: str
    min_drifted: int
    skipped_features: list[str] = field(default_factory=list)
    neighbour_share: float | None = None
    reference_neighbour_share: float | None = None
    snapshot: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (everything but the snapshot)."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_features": list(self.drifted_features),
            "scores": dict(self.scores),
            "thresholds": dict(self.thresholds),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "method": self.method,
            "min_drifted": self.min_drifted,
            "skipped_features": list(self.skipped_features),
            "neighbour_share": self.neighbour_share,
            "reference_neighbour_share": self.reference_neighbour_share,
        }


class DriftDetector:
    """Runs Evidently drift reports of feature windows against one reference profile.

    Args:
        reference: the feature profile (must hold every calibrated feature).
        calibration: thresholds from :func:`calibrate` (or :meth:`Calibration.from_json`).

    Raises:
        ValidationError: the reference lacks a calibrated feature or is not numeric.
    """

    def __init__(self, reference: pd.DataFrame, calibration: Calibration) -> None:
        self.calibration = calibration
        self.features = calibration.features
        # An older profile may write "no neighbour" as a distance: make it missing here too.
        self.reference = numeric_frame(
            missing_neighbours(reference), what="reference", columns=self.features
        )
        self._definition = DataDefinition(numerical_columns=self.features)
        self._reference_data = Dataset.from_pandas(
            _binnable(self.reference), data_definition=self._definition
        )
        self._sorted = {c: np.sort(finite_values(self.reference[c])) for c in self.features}

    @classmethod
    def fit(cls, reference: pd.DataFrame, *, window_size: int, **options: Any) -> DriftDetector:
        """Calibrate on ``reference`` (options as :func:`calibrate`) and build the detector."""
        return cls(reference, calibrate(reference, window_size=window_size, **options))

    def run(self, current: pd.DataFrame, *, report: bool = True) -> DriftResult:
        """Score one window of served features.

        Args:
            current: features of the window's inputs (columns as the reference; extra columns
                are ignored). Size it as the calibration's ``window_size``: smaller windows are
                noisier, so the calibrated false-alarm rate no longer holds.
            report: build the Evidently report (its scores, tests and HTML; about 2 s for a
                40k-row reference). False: the same scores and verdicts computed directly
                (milliseconds), with no snapshot, for frequent checks and benchmarks.

        Returns:
            The verdicts, scores and (with ``report``) the Evidently snapshot.

        Raises:
            ValidationError: missing or non-numeric feature columns, an empty window, or no
                feature with :data:`MIN_OBSERVED` finite values.
        """
        cal_ = self.calibration
        current = missing_neighbours(current)
        cur = numeric_frame(current, what="current", columns=self.features)
        finite = np.isfinite(cur.to_numpy()).sum(axis=0) >= min(MIN_OBSERVED, len(cur))  # (F,)
        tested = [c for c, ok in zip(self.features, finite, strict=True) if ok]
        skipped = [c for c, ok in zip(self.features, finite, strict=True) if not ok]
        if not tested:
            raise ValidationError(
                "current features hold no finite value",
                details=[{"loc": ["current"], "msg": "all values NaN or inf"}],
            )
        if len(cur) < cal_.window_size // 2:
            warnings.warn(
                f"drift window of {len(cur)} rows is under half the calibrated "
                f"{cal_.window_size}; expect more false alarms",
                TrajopsWarning,
                stacklevel=2,
            )
        stat = get_method(cal_.method)
        snapshot = None
        if report:
            snapshot, scores, count = self._evidently(cur, tested)
        else:
            scores = {
                c: stat.score(self._sorted[c], np.sort(finite_values(cur[c]))) for c in tested
            }
        drifted = [
            c for c in tested if exceed(np.array(scores[c]), np.array(cal_.thresholds[c]), stat)
        ]
        # The report's own count uses the same thresholds and comparison; keep them in step.
        if report and count != len(drifted):  # pragma: no cover - Evidently changed its rule
            raise RuntimeError(f"Evidently counted {count} drifted features, expected {drifted}")
        return DriftResult(
            dataset_drift=len(drifted) >= cal_.min_drifted,
            drifted_features=drifted,
            scores={c: scores[c] for c in tested},
            thresholds=dict(cal_.thresholds),
            n_reference=len(self.reference),
            n_current=len(cur),
            method=cal_.method,
            min_drifted=cal_.min_drifted,
            skipped_features=skipped,
            neighbour_share=neighbour_share(current),
            reference_neighbour_share=neighbour_share(self.reference),
            snapshot=snapshot,
        )

    def _evidently(self, cur: pd.DataFrame, tested: list[str]) -> tuple[Any, dict[str, float], int]:
        """Run the Evidently report; returns the snapshot, its scores and its drifted count."""
        cal_ = self.calibration
        preset = DataDriftPreset(
            columns=tested,
            method=cal_.method,
            per_column_threshold={c: cal_.thresholds[c] for c in tested},
            drift_share=min(1.0, cal_.min_drifted / len(tested)),
        )
        # A constant feature (time_step) makes Evidently's correlation table divide by zero.
        with np.errstate(divide="ignore", invalid="ignore"):
            snapshot = Report([preset], include_tests=True).run(
                current_data=Dataset.from_pandas(_binnable(cur), data_definition=self._definition),
                reference_data=self._reference_data,
            )
        scores: dict[str, float] = {}
        count = 0
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config["type"].endswith(":ValueDrift"):
                scores[config["column"]] = float(metric["value"])
            elif config["type"].endswith(":DriftedColumnsCount"):
                count = int(metric["value"]["count"])
        return snapshot, scores, count


def _write_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def save_html(result: DriftResult, path: str | Path) -> Path:
    """Write the Evidently HTML report of ``result`` to ``path`` (whole file or nothing)."""
    if result.snapshot is None:
        raise ValidationError(
            "drift result has no Evidently snapshot",
            details=[{"loc": ["snapshot"], "msg": "missing"}],
        )
    return _write_atomic(path, result.snapshot.get_html_str(as_iframe=False))


def write_summary(result: DriftResult, path: str | Path, *, include_snapshot: bool = False) -> Path:
    """Write ``result.summary()`` as JSON (plus the Evidently snapshot under ``"evidently"``)."""
    data = result.summary()
    if include_snapshot and result.snapshot is not None:
        data["evidently"] = json.loads(result.snapshot.json())
    return _write_atomic(path, json.dumps(data, indent=2))


class Persistence:
    """An alert needs ``k`` drifted windows among the last ``m``.

    Args:
        k: drifted windows needed.
        m: windows looked at (the most recent ones).
        history: earlier verdicts, oldest first (e.g. reloaded from the store).

    Raises:
        ValidationError: unless ``1 <= k <= m``.
    """

    def __init__(self, k: int, m: int, history: Iterable[bool] = ()) -> None:
        if not 1 <= k <= m:
            raise ValidationError(
                f"persistence needs 1 <= k <= m, got k={k}, m={m}",
                details=[{"loc": ["persistence"], "msg": "need 1 <= k <= m"}],
            )
        self.k, self.m = k, m
        self._window: deque[bool] = deque((bool(h) for h in history), maxlen=m)

    @property
    def history(self) -> list[bool]:
        """The last ``m`` verdicts at most, oldest first."""
        return list(self._window)

    @property
    def alert(self) -> bool:
        """Whether at least ``k`` of the last ``m`` windows drifted."""
        return sum(self._window) >= self.k

    def update(self, drifted: bool) -> bool:
        """Record one window's verdict and return :attr:`alert`."""
        self._window.append(bool(drifted))
        return self.alert

    def reset(self) -> None:
        """Forget every verdict (e.g. after a new model or reference)."""
        self._window.clear()


def _binnable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every feature that is constant up to float noise made exactly constant.

    Identical walkers give a speed of 0.4 and 0.4000000000000001: a range numpy cannot cut into
    bins ("Too many bins for data range"), and Evidently's report failed on it (found by the
    compose stack test; the drift run answered 500). A constant column bins fine. Other
    columns are untouched, so the report's scores stay the calibrated statistic's.
    """
    fixed = {}
    for column in frame.select_dtypes("number").columns:
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        spread = float(finite.max() - finite.min())
        if 0.0 < spread <= 1e-9 * max(1.0, float(np.abs(finite).max())):
            fixed[column] = np.where(np.isfinite(values), float(np.median(finite)), values)
    return frame.assign(**fixed) if fixed else frame

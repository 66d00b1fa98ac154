"""Per-feature drift scores, computed exactly as Evidently computes them, and input checks.

Shared by the calibration (thousands of null windows, so scores run on pre-sorted samples in
``O(n + m)``) and by :class:`trajops.monitoring.drift.DriftDetector` (its report-less path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trajops.errors import ValidationError


@dataclass(frozen=True)
class StatMethod:
    """A distance-type Evidently stat test: larger score = more drift.

    Attributes:
        name: Evidently's registered name.
        score: ``score(reference, current)`` on *sorted*, finite 1-D samples, equal (up to
            float rounding) to what Evidently computes on the same samples.
        inclusive: whether Evidently flags drift at ``score >= threshold`` (else ``>``).
    """

    name: str
    score: Callable[[np.ndarray, np.ndarray], float]
    inclusive: bool


def cdf_gaps(r_sorted: np.ndarray, c_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|F_r - F_c|`` on each interval between merged sample values, and the intervals' widths.

    The same quantities as :func:`scipy.stats._stats_py._cdf_distance`, in ``O(n + m)`` on
    pre-sorted samples (calibration scores thousands of windows against one reference).
    """
    merged = np.insert(r_sorted, np.searchsorted(r_sorted, c_sorted), c_sorted)  # (n + m,)
    is_ref = np.ones(len(merged), bool)
    is_ref[np.searchsorted(r_sorted, c_sorted) + np.arange(len(c_sorted))] = False
    f_r = np.cumsum(is_ref)[:-1] / len(r_sorted)  # (n + m - 1,)
    f_c = np.cumsum(~is_ref)[:-1] / len(c_sorted)
    return np.abs(f_r - f_c), np.diff(merged)


def _wasserstein_normed(r_sorted: np.ndarray, c_sorted: np.ndarray) -> float:
    # evidently.legacy.calculations.stattests.wasserstein_distance_norm: W1 / max(std_ref, 1e-3)
    gap, width = cdf_gaps(r_sorted, c_sorted)
    return float(np.sum(gap * width) / max(float(np.std(r_sorted)), 0.001))


def _energy(r_sorted: np.ndarray, c_sorted: np.ndarray) -> float:
    # evidently.legacy.calculations.stattests.energy_distance: scipy.stats.energy_distance
    gap, width = cdf_gaps(r_sorted, c_sorted)
    return float(np.sqrt(2.0) * np.sqrt(np.sum(gap**2 * width)))


METHODS: dict[str, StatMethod] = {
    "wasserstein": StatMethod("wasserstein", _wasserstein_normed, inclusive=True),
    "ed": StatMethod("ed", _energy, inclusive=False),
}
"""Stat tests the calibration supports (Evidently names)."""

MIN_THRESHOLD = 1e-6
"""Floor of every threshold: a constant feature (e.g. ``time_step``) has an all-zero null, and
Evidently's ``score >= 0`` would flag it on every window."""


def get_method(name: str) -> StatMethod:
    """The :class:`StatMethod` called ``name``, or a :class:`ValidationError` naming the choices."""
    if name not in METHODS:
        raise ValidationError(
            f"unknown drift method {name!r}; expected one of {', '.join(METHODS)}",
            details=[{"loc": ["method"], "msg": f"unknown method {name!r}"}],
        )
    return METHODS[name]


def finite_values(values: np.ndarray | pd.Series) -> np.ndarray:
    """Drop NaN and +/-inf, as Evidently does before a stat test."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def column_scores(reference: np.ndarray, current: np.ndarray, method: StatMethod) -> np.ndarray:
    """Per-column scores of ``current`` against ``reference``.

    Args:
        reference: ``(N_ref, F)`` values.
        current: ``(N_cur, F)`` values.
        method: the stat test.

    Returns:
        ``(F,)`` scores; NaN for a column with no finite value on either side.
    """
    out = np.full(reference.shape[1], np.nan)
    for j in range(reference.shape[1]):
        r, c = finite_values(reference[:, j]), finite_values(current[:, j])
        if len(r) and len(c):
            out[j] = method.score(np.sort(r), np.sort(c))
    return out


def exceed(scores: np.ndarray, thresholds: np.ndarray, method: StatMethod) -> np.ndarray:
    """Boolean drift verdicts, with Evidently's comparison for ``method``."""
    with np.errstate(invalid="ignore"):
        return scores >= thresholds if method.inclusive else scores > thresholds


def numeric_frame(
    frame: pd.DataFrame, *, what: str, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """``frame[columns]`` as float64, or a :class:`ValidationError` naming what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(
            f"{what} must be a DataFrame", details=[{"loc": [what], "msg": "not a DataFrame"}]
        )
    cols = list(frame.columns) if columns is None else list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} lacks feature column(s) {', '.join(map(str, missing))}",
            details=[{"loc": [what, c], "msg": "missing column"} for c in missing],
        )
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValidationError(
            f"{what} has non-numeric column(s) {', '.join(map(str, bad))}",
            details=[{"loc": [what, c], "msg": "not numeric"} for c in bad],
        )
    if len(frame) == 0 or not cols:
        raise ValidationError(
            f"{what} is empty", details=[{"loc": [what], "msg": "no rows or columns"}]
        )
    return frame[cols].astype(np.float64)

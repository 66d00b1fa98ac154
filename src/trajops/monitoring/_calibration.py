"""Drift-threshold calibration: null distributions of per-feature scores and thresholds on them.

Null windows come from the reference itself (held-out stretches of time); thresholds are
set jointly so that the dataset rule trips on a chosen share of them. Public names are
re-exported by :mod:`trajops.monitoring.drift`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from trajops.errors import ValidationError
from trajops.monitoring._scores import (
    METHODS,
    MIN_THRESHOLD,
    StatMethod,
    exceed,
    finite_values,
    get_method,
    numeric_frame,
)


def _holdout_mask(
    blocks: list[np.ndarray], *, share: float, n_blocks: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows held out: per group, ``n_blocks`` random contiguous stretches covering ``share``."""
    n = sum(len(b) for b in blocks)
    mask = np.zeros(n, bool)
    for rows in blocks:
        m = len(rows)
        length = max(1, round(share * m / n_blocks))
        for _ in range(n_blocks):
            start = int(rng.integers(0, max(1, m - length + 1)))
            mask[rows[start : start + length]] = True
    return mask


def null_scores(
    reference: np.ndarray,
    *,
    window_size: int,
    n_boot: int,
    method: StatMethod,
    groups: np.ndarray | None,
    holdout_share: float,
    n_blocks: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Scores of same-distribution windows drawn from the reference itself.

    With ``holdout_share > 0`` each replicate holds out contiguous stretches of rows (in row
    order, which is time order within a scene) from every group, draws the window from the
    held-out rows and scores it against the rest: the null then carries the slow changes of a
    scene over time (density, flow direction), which served windows also show. With
    ``holdout_share == 0`` it is the plain bootstrap: rows drawn at random, scored against the
    whole reference.

    Returns:
        ``(n_boot, F)`` scores.
    """
    n, n_features = reference.shape
    labels = np.zeros(n, np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    blocks = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    # Sort every column once; a replicate's "rest" is then a mask over the sorted rows.
    orders = []
    for j in range(n_features):
        keep = np.flatnonzero(np.isfinite(reference[:, j]))
        orders.append(keep[np.argsort(reference[keep, j], kind="stable")])
    out = np.full((n_boot, n_features), np.nan)  # (B, F)
    for b in range(n_boot):
        held = (
            _holdout_mask(blocks, share=holdout_share, n_blocks=n_blocks, rng=rng)
            if holdout_share > 0
            else np.zeros(n, bool)
        )
        pool = np.flatnonzero(held) if held.any() else np.arange(n)
        idx = rng.choice(pool, window_size, replace=len(pool) < window_size)  # (W,)
        for j, order in enumerate(orders):
            rest = reference[order[~held[order]], j]  # sorted, finite
            cur = np.sort(finite_values(reference[idx, j]))
            if len(rest) and len(cur):
                out[b, j] = method.score(rest, cur)
    return out


def _kth_largest(z: np.ndarray, k: int) -> np.ndarray:
    """``(M,)`` k-th largest value of each row of ``z`` ``(M, F)``."""
    return -np.sort(-z, axis=1)[:, k - 1]


def thresholds_from_null(
    null: np.ndarray,
    *,
    alarm_rate: float,
    quantile: float | None,
    min_drifted: int,
    rng: np.random.Generator,
    n_mc: int = 200_000,
) -> tuple[np.ndarray, float]:
    """Per-column thresholds on a null ``(B, F)``.

    Each column's null is modelled as log-normal (the normed Wasserstein distance of a
    same-distribution sample is right-skewed and positive) with the columns' dependence kept
    as a Gaussian copula. Thresholds share one tail level ``z``: chosen so that, under this
    model, at least ``min_drifted`` columns exceed their thresholds in a share ``alarm_rate``
    of same-distribution windows (or set directly by ``quantile``). A threshold is never
    below the empirical null quantile at the same level, so a heavier-than-log-normal tail
    only makes it more conservative.

    Returns:
        ``(F,)`` thresholds and the per-column quantile level they sit at.
    """
    logs = np.log(np.maximum(null, MIN_THRESHOLD))  # (B, F)
    mu, sd = logs.mean(axis=0), logs.std(axis=0)  # (F,)
    live = sd > 1e-12  # constant columns (all-zero null) have no spread
    if quantile is None:
        z_live = (logs[:, live] - mu[live]) / sd[live]  # (B, F_live)
        if z_live.shape[1] == 0:
            level = 1.0 - alarm_rate
        else:
            corr = np.atleast_2d(np.corrcoef(z_live, rowvar=False))
            eigval, eigvec = np.linalg.eigh(np.nan_to_num(corr))
            root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))  # corr = root @ root.T
            sims = rng.standard_normal((n_mc, root.shape[0])) @ root.T  # (M, F_live)
            k = min(min_drifted, sims.shape[1])
            z_star = float(np.quantile(_kth_largest(sims, k), 1.0 - alarm_rate))
            level = float(stats.norm.cdf(z_star))
    else:
        level = quantile
    z = float(stats.norm.ppf(level))
    parametric = np.exp(mu + z * sd)
    empirical = np.quantile(null, min(level, 1.0), axis=0)
    thresholds = np.where(live, np.maximum(parametric, empirical), null.max(axis=0))
    return np.maximum(thresholds, MIN_THRESHOLD), level


@dataclass(frozen=True)
class Calibration:
    """Per-feature drift thresholds and how they were obtained (JSON round-trips).

    Attributes:
        method: Evidently stat test (``"wasserstein"``: normed Wasserstein distance).
        window_size: inputs per monitored window the thresholds are valid for.
        thresholds: feature -> threshold on the method's score.
        min_drifted: features that must drift for the window to count as drifted.
        alarm_rate: target share of same-distribution windows flagged as drifted.
        quantile: per-feature null quantile the thresholds sit at.
        n_boot: null windows drawn.
        holdout_share: share of reference rows held out per null window (0: plain bootstrap).
        n_blocks: contiguous stretches per group making up the held-out rows.
        n_reference: reference rows.
        seed: random seed of the null draws.
        null_alarm_rate: share of the drawn null windows the rule flags (in-sample check).
        null_quantiles: feature -> ``{"q50", "q95", "max"}`` of its null scores.
    """

    method: str
    window_size: int
    thresholds: dict[str, float]
    min_drifted: int
    alarm_rate: float
    quantile: float
    n_boot: int
    holdout_share: float
    n_blocks: int
    n_reference: int
    seed: int
    null_alarm_rate: float
    null_quantiles: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        thresholds = self.thresholds if isinstance(self.thresholds, Mapping) else {}
        bad = [
            name
            for name, value in thresholds.items()
            if not isinstance(value, int | float) or not np.isfinite(value) or value <= 0
        ]
        problems = [
            ("method", self.method in METHODS, f"must be one of {', '.join(METHODS)}"),
            ("thresholds", bool(thresholds) and not bad, "must map features to positive numbers"),
            ("min_drifted", 1 <= self.min_drifted <= max(1, len(thresholds)), "out of range"),
            ("window_size", self.window_size >= 1, "must be positive"),
        ]
        failed = [(name, msg) for name, ok, msg in problems if not ok]
        if failed:
            raise ValidationError(
                "invalid drift calibration: " + "; ".join(f"{n} {m}" for n, m in failed),
                details=[{"loc": ["calibration", n], "msg": m} for n, m in failed],
            )

    @property
    def features(self) -> list[str]:
        """Calibrated feature names, in profile order."""
        return list(self.thresholds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text (store it next to the profile)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValidationError: missing or unexpected keys.
        """
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ValidationError(
                f"not a drift calibration: {exc}",
                details=[{"loc": ["calibration"], "msg": str(exc)}],
            ) from None

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Rebuild from :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"drift calibration is not JSON: {exc}",
                details=[{"loc": ["calibration"], "msg": "invalid JSON"}],
            ) from None
        if not isinstance(data, dict):
            raise ValidationError(
                "drift calibration must be a JSON object",
                details=[{"loc": ["calibration"], "msg": "not an object"}],
            )
        return cls.from_dict(data)


def calibrate(
    reference: pd.DataFrame,
    *,
    window_size: int,
    n_boot: int = 200,
    alarm_rate: float = 0.05,
    quantile: float | None = None,
    min_drifted: int = 2,
    method: str = "wasserstein",
    groups: np.ndarray | None = None,
    holdout_share: float = 0.2,
    n_blocks: int = 1,
    seed: int = 0,
) -> Calibration:
    """Calibrate per-feature thresholds on same-distribution windows drawn from the reference.

    Each null window holds out ``n_blocks`` contiguous stretches of rows per group (row order
    is time order within a scene in a training profile), ``holdout_share`` of the rows in all,
    draws ``window_size`` rows from them and scores each feature against the remaining rows
    with ``method``, exactly as Evidently scores it. Thresholds are set jointly on these scores
    (see :func:`trajops.monitoring._calibration.thresholds_from_null`).

    Args:
        reference: the feature profile (numeric columns only are used).
        window_size: inputs per monitored window in production.
        n_boot: null windows to draw (more: steadier thresholds, slower).
        alarm_rate: target share of same-distribution windows the dataset rule flags
            (before :class:`~trajops.monitoring.drift.Persistence`).
        quantile: set every per-feature threshold at this null quantile instead of solving
            for ``alarm_rate``.
        min_drifted: features that must exceed their threshold for dataset drift (2 and 5 %
            were chosen on the ETH/UCY eth fold's validation split; see docs/monitoring.md).
        method: Evidently stat test, ``"wasserstein"`` (normed) or ``"ed"`` (energy distance).
        groups: ``(N_ref,)`` scene (or camera) of each reference row; holdout is stratified
            over them. None: the profile is one stream.
        holdout_share: held-out share per null window; 0 gives the plain i.i.d. bootstrap,
            which ignores slow changes over time and under-estimates the null.
        n_blocks: contiguous held-out stretches per group; 1 (the default) cuts the null
            windows the way a validation split is cut (one later stretch of each recording).
        seed: random seed.

    Returns:
        The calibration, ready for :class:`DriftDetector` and for JSON storage.

    Raises:
        ValidationError: an empty/non-numeric reference or out-of-range parameters.
    """
    checks = [
        ("window_size", window_size >= 10, "must be at least 10"),
        ("n_boot", n_boot >= 20, "must be at least 20"),
        ("alarm_rate", 0 < alarm_rate < 0.5, "must be in (0, 0.5)"),
        ("quantile", quantile is None or 0.5 < quantile < 1, "must be in (0.5, 1)"),
        ("min_drifted", min_drifted >= 1, "must be at least 1"),
        ("holdout_share", 0 <= holdout_share <= 0.5, "must be in [0, 0.5]"),
        ("n_blocks", n_blocks >= 1, "must be at least 1"),
    ]
    bad = [(name, msg) for name, ok, msg in checks if not ok]
    if bad:
        raise ValidationError(
            "invalid drift calibration: " + "; ".join(f"{n} {m}" for n, m in bad),
            details=[{"loc": ["calibration", n], "msg": m} for n, m in bad],
        )
    stat = get_method(method)
    numeric = (
        reference.select_dtypes("number") if isinstance(reference, pd.DataFrame) else reference
    )
    ref = numeric_frame(numeric, what="reference")
    if min_drifted > ref.shape[1]:
        raise ValidationError(
            f"min_drifted={min_drifted} exceeds the {ref.shape[1]} reference features",
            details=[{"loc": ["calibration", "min_drifted"], "msg": "more than the features"}],
        )
    if groups is not None and len(groups) != len(ref):
        raise ValidationError(
            f"groups has {len(groups)} labels for {len(ref)} reference rows",
            details=[{"loc": ["calibration", "groups"], "msg": "length mismatch"}],
        )
    rng = np.random.default_rng(seed)
    values = ref.to_numpy()  # (N_ref, F)
    null = null_scores(
        values,
        window_size=window_size,
        n_boot=n_boot,
        method=stat,
        groups=None if groups is None else np.asarray(groups),
        holdout_share=holdout_share,
        n_blocks=n_blocks,
        rng=rng,
    )  # (B, F)
    null = np.nan_to_num(null, nan=0.0)  # a column with no finite value never drifts
    thresholds, level = thresholds_from_null(
        null, alarm_rate=alarm_rate, quantile=quantile, min_drifted=min_drifted, rng=rng
    )
    fired = exceed(null, thresholds[None, :], stat).sum(axis=1) >= min_drifted
    names = [str(c) for c in ref.columns]
    return Calibration(
        method=method,
        window_size=window_size,
        thresholds={c: float(t) for c, t in zip(names, thresholds, strict=True)},
        min_drifted=min_drifted,
        alarm_rate=alarm_rate,
        quantile=level,
        n_boot=n_boot,
        holdout_share=holdout_share,
        n_blocks=n_blocks,
        n_reference=len(ref),
        seed=seed,
        null_alarm_rate=float(fired.mean()),
        null_quantiles={
            c: {
                "q50": float(np.quantile(null[:, j], 0.5)),
                "q95": float(np.quantile(null[:, j], 0.95)),
                "max": float(null[:, j].max()),
            }
            for j, c in enumerate(names)
        },
    )

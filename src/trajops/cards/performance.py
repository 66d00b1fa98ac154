"""The performance card: how well a model works for whom (error by group, with uncertainty).

For each configured grouping (scene, speed bin, crowd-density bin, walking direction, linear vs
non-linear path) the card lists every group's window and agent counts, mean ADE with a
bootstrap confidence interval, mean FDE and its ratio to the overall ADE, the grouping's
disparity ratio (worst / best group among the adequately sampled ones), and flags:

* **under-sampled**: fewer than ``min_samples`` windows — its numbers are shown but not trusted
  and it is left out of the disparity ratio;
* **underserved**: ADE above ``underserved_ratio`` x the overall ADE *and* the whole confidence
  interval above the overall ADE (a gap the sample cannot explain away).

Intervals come from a cluster bootstrap over agents: the windows of one agent overlap in time
and are not independent, so resampling windows would make the intervals too narrow.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from trajops.cards.breakdown import PerformanceConfig, assign_groups

_MAX_DRAWS = 4_000_000
"""Bootstrap index cells drawn at once (bounds memory for large groups)."""


@dataclass(frozen=True)
class GroupStat:
    """One group's numbers (metrics are None for an empty group)."""

    grouping: str
    group: str
    n: int
    n_agents: int
    ade: float | None
    fde: float | None
    ade_ci: tuple[float, float] | None
    ratio_to_overall: float | None
    under_sampled: bool
    underserved: bool


@dataclass(frozen=True)
class GroupingStat:
    """One grouping: its groups and the disparity between them."""

    name: str
    groups: tuple[GroupStat, ...]
    disparity: float | None
    """Worst / best mean ADE among groups with at least ``min_samples`` windows."""
    worst: str | None
    best: str | None


@dataclass(frozen=True)
class PerformanceCard:
    """Error by group for one model on one evaluation set."""

    title: str
    n: int
    n_agents: int
    ade: float
    fde: float
    ade_ci: tuple[float, float]
    groupings: tuple[GroupingStat, ...]
    config: dict[str, Any]
    source: dict[str, Any]

    def grouping(self, name: str) -> GroupingStat:
        """The grouping called ``name`` (KeyError when the card does not show it)."""
        for g in self.groupings:
            if g.name == name:
                return g
        raise KeyError(name)

    @property
    def flagged(self) -> list[GroupStat]:
        """Every underserved or under-sampled group, grouping by grouping."""
        return [s for g in self.groupings for s in g.groups if s.underserved or s.under_sampled]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: no NaN)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceCard:
        """Inverse of :meth:`to_dict` (e.g. a logged ``performance_card.json``)."""

        def ci(value: Any) -> tuple[float, float] | None:
            return None if value is None else (float(value[0]), float(value[1]))

        groupings = tuple(
            GroupingStat(
                name=g["name"],
                groups=tuple(GroupStat(**{**s, "ade_ci": ci(s["ade_ci"])}) for s in g["groups"]),
                disparity=g["disparity"],
                worst=g["worst"],
                best=g["best"],
            )
            for g in data["groupings"]
        )
        ade_ci = ci(data["ade_ci"])
        return cls(
            title=data["title"],
            n=int(data["n"]),
            n_agents=int(data["n_agents"]),
            ade=float(data["ade"]),
            fde=float(data["fde"]),
            ade_ci=ade_ci if ade_ci is not None else (math.nan, math.nan),
            groupings=groupings,
            config=dict(data["config"]),
            source=dict(data.get("source", {})),
        )


def cluster_bootstrap_ci(
    values: np.ndarray,
    clusters: np.ndarray,
    *,
    confidence: float,
    n_boot: int,
    seed: int | list[int],
) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` resampling whole clusters.

    Args:
        values: ``(N,)`` per-window errors.
        clusters: ``(N,)`` cluster (agent) key of each window.
        confidence: two-sided level, e.g. 0.95.
        n_boot: resamples.
        seed: seed (or seed sequence) of the resampling.

    Returns:
        ``(low, high)``; a single cluster gives a zero-width interval at the mean.
    """
    keys, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=values)  # (C,)
    counts = np.bincount(inverse).astype(np.float64)  # (C,)
    n_clusters = len(keys)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _MAX_DRAWS // n_clusters)
    means = []
    for start in range(0, n_boot, per_chunk):
        idx = rng.integers(0, n_clusters, size=(min(per_chunk, n_boot - start), n_clusters))
        means.append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))  # (B_chunk,)
    boot = np.concatenate(means)  # (n_boot,)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _group_seed(seed: int, *parts: str) -> list[int]:
    # A stable per-group stream: the same card twice gives the same intervals.
    return [seed, zlib.crc32("\0".join(parts).encode())]


def _group_stat(
    frame: pd.DataFrame,
    mask: np.ndarray,
    *,
    grouping: str,
    group: str,
    overall: float,
    config: PerformanceConfig,
) -> GroupStat:
    sub = frame.loc[mask]
    n = len(sub)
    if n == 0:
        return GroupStat(grouping, group, 0, 0, None, None, None, None, True, False)
    agents = (sub["scene"] + "\0" + sub["agent_id"]).to_numpy()
    ade = float(sub["ade"].mean())
    ci = cluster_bootstrap_ci(
        sub["ade"].to_numpy(np.float64),
        agents,
        confidence=config.confidence,
        n_boot=config.n_boot,
        seed=_group_seed(config.seed, grouping, group),
    )
    ratio = ade / overall if overall > 0 else None
    under_sampled = n < config.min_samples
    underserved = (
        not under_sampled
        and ratio is not None
        and ratio > config.underserved_ratio
        and ci[0] > overall
    )
    return GroupStat(
        grouping=grouping,
        group=group,
        n=n,
        n_agents=len(set(agents.tolist())),
        ade=ade,
        fde=float(sub["fde"].mean()),
        ade_ci=ci,
        ratio_to_overall=ratio,
        under_sampled=under_sampled,
        underserved=underserved,
    )


def _disparity(groups: list[GroupStat]) -> tuple[float | None, str | None, str | None]:
    eligible = [g for g in groups if not g.under_sampled and g.ade is not None]
    if len(eligible) < 2:
        return None, None, None
    worst = max(eligible, key=lambda g: g.ade or 0.0)
    best = min(eligible, key=lambda g: g.ade or 0.0)
    if not best.ade:
        return None, worst.group, best.group
    return float((worst.ade or 0.0) / best.ade), worst.group, best.group


def performance_card(
    frame: pd.DataFrame,
    config: PerformanceConfig | None = None,
    *,
    title: str,
    source: dict[str, Any] | None = None,
) -> PerformanceCard:
    """Compute the performance card of a per-window table (:func:`~trajops.cards.window_table`).

    Args:
        frame: one row per scored window (validated; see :func:`check_table`).
        config: groups, thresholds and bootstrap settings.
        title: what the card is about (model name, version).
        source: provenance written into the card (run id, version, file).
    """
    config = config or PerformanceConfig()
    agents = (frame["scene"] + "\0" + frame["agent_id"]).to_numpy()
    overall = float(frame["ade"].mean())
    overall_ci = cluster_bootstrap_ci(
        frame["ade"].to_numpy(np.float64),
        agents,
        confidence=config.confidence,
        n_boot=config.n_boot,
        seed=config.seed,
    )
    groupings = []
    for name, groups in assign_groups(frame, config).items():
        stats = [
            _group_stat(frame, mask, grouping=name, group=label, overall=overall, config=config)
            for label, mask in groups
        ]
        disparity, worst, best = _disparity(stats)
        groupings.append(GroupingStat(name, tuple(stats), disparity, worst, best))
    return PerformanceCard(
        title=title,
        n=len(frame),
        n_agents=len(set(agents.tolist())),
        ade=overall,
        fde=float(frame["fde"].mean()),
        ade_ci=overall_ci,
        groupings=tuple(groupings),
        config=config.to_dict(),
        source=dict(source or {}),
    )

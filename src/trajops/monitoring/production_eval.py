"""The promotion gate's evaluation set from production: the most recent realised forecasts
that the candidate never trained on.

A candidate trained on a harvest records in its run's tags the last forecast instant its
training and validation splits held (``harvest.fit_until``, :mod:`trajops.tracking.datasets`):
only windows of forecasts made after it (and an embargo of one window's length) are held out
from it: the harvest's own test split, split by time, and all that came later. With fewer than
``gate_min_production_windows`` such windows, the gate falls back to its simulated set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from trajops import STEP_S, T_OBS, T_PRED
from trajops.data.windows import WindowSet, make_windows
from trajops.monitoring.harvest import HarvestFilter, harvest_frame
from trajops.registry.adapter import ModelVersionInfo, Registry
from trajops.registry.promotion import HeldOut
from trajops.settings import Settings
from trajops.store.db import Store

EMBARGO_S = (T_OBS + T_PRED) * STEP_S
"""Seconds after a training harvest's last forecast before a window counts as unseen."""


@dataclass(frozen=True)
class ProductionEval:
    """Held-out production windows for the gate.

    Attributes:
        windows: the windows; ``scene`` is ``"<site>/<request_id>"``.
        after: forecasts after this instant only (the candidate's training data ends there).
    """

    windows: WindowSet
    after: datetime | None

    @property
    def source(self) -> str:
        since = f" after {self.after.isoformat(timespec='seconds')}" if self.after else ""
        return f"production: {len(self.windows)} most recent realised forecasts{since}"


def trained_until(registry: Registry, version: ModelVersionInfo) -> datetime | None:
    """End of the production data ``version`` was trained on (None: none of it)."""
    tags = registry.run_tags(version)
    raw = tags.get("harvest.fit_until") or tags.get("harvest.time_range", "").rpartition("/")[2]
    if not raw:
        return None
    try:
        end = datetime.fromisoformat(raw)
    except ValueError:
        return None
    aware = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
    return aware + timedelta(seconds=EMBARGO_S)


def production_eval(
    store: Store,
    registry: Registry,
    candidate: ModelVersionInfo,
    *,
    min_windows: int,
    max_windows: int = 2000,
) -> ProductionEval | None:
    """The most recent production windows the candidate has not seen, or None when fewer
    than ``min_windows`` exist (the gate then uses its simulated set)."""
    after = trained_until(registry, candidate)
    frame, n = harvest_frame(store, HarvestFilter(since=after, limit=max_windows))
    if n < min_windows:
        return None
    windows = make_windows(frame)
    if len(windows) > max_windows:
        order = np.argsort(frame.groupby("scene")["t"].first().reindex(windows.scene).to_numpy())
        windows = windows.subset(np.sort(order[-max_windows:]))
    return ProductionEval(windows=windows, after=after)


def gate_eval(
    settings: Settings, registry: Registry, ref: str | int | ModelVersionInfo
) -> ProductionEval | None:
    """:func:`production_eval` of the version ``ref`` on the configured operational store
    (None when it holds too few held-out windows, or cannot be reached: the gate then falls
    back to its simulated set, and says so in its checks)."""
    candidate = ref if isinstance(ref, ModelVersionInfo) else registry.resolve(ref)
    try:
        store = Store(settings.resolved_database_url)
    except SQLAlchemyError:
        return None
    try:
        return production_eval(
            store, registry, candidate, min_windows=settings.gate_min_production_windows
        )
    except SQLAlchemyError:
        return None
    finally:
        store.dispose()


def held_out(settings: Settings, registry: Registry) -> HeldOut:
    """The promotion gate's finder of a candidate's held-out production windows
    (:func:`gate_eval`), for :func:`trajops.registry.promotion.promote`."""

    def find(candidate: ModelVersionInfo) -> tuple[WindowSet, str] | None:
        found = gate_eval(settings, registry, candidate)
        return (found.windows, found.source) if found is not None else None

    return find

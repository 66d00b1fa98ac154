"""Harvest: production windows from the operational store, as a dataset training reads.

A window is a served forecast whose whole future was realised: its logged input (the
``T_obs`` positions the model saw) and the ``T_pred`` true positions of its ``feedback`` row,
whether the streaming route scored it itself or a client reported it. The other agents the
same request saw are kept as its neighbours (observed positions only, unless their own future
arrived too). See :mod:`trajops.data.harvest` for the format.

Only what the store holds is harvested: ids are the store's pseudonyms, an erased subject's
rows are gone, and rows past retention are purged, so a later harvest never brings them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, make_url, select

from trajops import T_OBS, T_PRED
from trajops.data.harvest import HARVEST_COLUMNS, scene_name, write_harvest
from trajops.data.readers import FRAME_STEP
from trajops.store.db import Store
from trajops.store.models import Feedback, PredictionRecord


@dataclass(frozen=True)
class HarvestFilter:
    """Which production windows to harvest.

    Attributes:
        since, until: forecast times ``[since, until)`` (:data:`FORECAST_TIME`),
            timezone-aware (None: open).
        scene_key: only this scene (its pseudonym).
        limit: most forecasts with a realised future (the most recent ones).
    """

    since: datetime | None = None
    until: datetime | None = None
    scene_key: str | None = None
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "scene": self.scene_key,
        }


def _epoch(moment: datetime) -> float:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp()


FORECAST_TIME = func.coalesce(PredictionRecord.observed_at, PredictionRecord.created_at)
"""When a forecast was made: when its input was observed by the client's clock (streamed
tracks), else when it was served. A harvest filters, orders and splits by it."""


def _complete_requests(store: Store, where: HarvestFilter) -> list[str]:
    """Requests with at least one forecast whose whole future was realised, oldest first."""
    stmt = (
        select(PredictionRecord.request_id, FORECAST_TIME)
        .join(
            Feedback,
            and_(
                Feedback.request_id == PredictionRecord.request_id,
                Feedback.agent_key == PredictionRecord.agent_key,
            ),
        )
        .where(Feedback.n_steps == T_PRED)
        .distinct()
    )
    if where.since is not None:
        stmt = stmt.where(FORECAST_TIME >= where.since)  # noqa: SIM300 (a column, not a constant)
    if where.until is not None:
        stmt = stmt.where(FORECAST_TIME < where.until)  # noqa: SIM300
    if where.scene_key is not None:
        stmt = stmt.where(PredictionRecord.scene_key == where.scene_key)
    stmt = stmt.order_by(FORECAST_TIME.desc(), PredictionRecord.request_id)
    if where.limit is not None:
        stmt = stmt.limit(where.limit)
    with store.session() as session:
        rows = session.execute(stmt).all()
    return [request_id for request_id, _ in reversed(rows)]


def _rows(store: Store, request_ids: list[str], chunk: int = 500) -> Iterator[Any]:
    """Every agent of the requests: its input, and its realised future when complete."""
    for start in range(0, len(request_ids), chunk):
        ids = request_ids[start : start + chunk]
        stmt = (
            select(
                PredictionRecord.request_id,
                PredictionRecord.agent_key,
                PredictionRecord.scene_key,
                FORECAST_TIME,
                PredictionRecord.inputs,
                Feedback.positions,
                Feedback.n_steps,
            )
            .outerjoin(
                Feedback,
                and_(
                    Feedback.request_id == PredictionRecord.request_id,
                    Feedback.agent_key == PredictionRecord.agent_key,
                ),
            )
            .where(PredictionRecord.request_id.in_(ids))
        )
        with store.session() as session:
            yield from session.execute(stmt).all()


def harvest_frame(store: Store, where: HarvestFilter) -> tuple[pd.DataFrame, int]:
    """The harvest's windows frame (:data:`~trajops.data.harvest.HARVEST_COLUMNS`) and how
    many windows it yields."""
    request_ids = _complete_requests(store, where)
    cols: dict[str, list[Any]] = {c: [] for c in HARVEST_COLUMNS}
    n_windows = 0
    obs_frames = np.arange(T_OBS) * FRAME_STEP
    fut_frames = (T_OBS + np.arange(T_PRED)) * FRAME_STEP
    for request_id, agent_key, scene_key, made_at, inputs, future, n_steps in _rows(
        store, request_ids
    ):
        obs = np.asarray(inputs, dtype=np.float64)  # (T_obs, 2)
        if obs.shape != (T_OBS, 2):
            continue
        site = scene_key or ""
        parts = [(obs_frames, obs)]
        if future is not None and n_steps == T_PRED:
            parts.append((fut_frames, np.asarray(future, dtype=np.float64)))  # (T_pred, 2)
            n_windows += 1
        t = _epoch(made_at)
        for frames, xy in parts:
            n = len(frames)
            cols["scene"] += [scene_name(site, request_id)] * n
            cols["frame"] += frames.tolist()
            cols["agent_id"] += [agent_key] * n
            cols["x"] += xy[:, 0].tolist()
            cols["y"] += xy[:, 1].tolist()
            cols["site"] += [site] * n
            cols["t"] += [t] * n
            cols["request_id"] += [request_id] * n
    frame = pd.DataFrame(cols)
    frame["frame"] = frame["frame"].astype(np.int64)
    frame["t"] = frame["t"].astype(np.float64)
    return frame, n_windows


def harvest(store: Store, output: Path, where: HarvestFilter) -> dict[str, Any]:
    """Write the production windows that match ``where`` to the harvest folder ``output``
    (all or nothing) and return its manifest."""
    frame, n_windows = harvest_frame(store, where)
    details = {
        "created_at": datetime.now(UTC).isoformat(),
        "filters": where.to_dict(),
        "sources": {"store": make_url(store.url).render_as_string(hide_password=True)},
    }
    return write_harvest(frame, output, n_windows=n_windows, details=details)

"""Online accuracy: ground truth arriving after the fact is scored against what was served."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import IntegrityError

from trajops.errors import ConflictError, NotFoundError, ValidationError
from trajops.evaluation.metrics import MISS_THRESHOLD_M
from trajops.store.db import Store
from trajops.store.models import Feedback, PredictionRecord

Grouping = Literal["scene"]
"""What online accuracy can be split by, beyond model version and variant."""

GROUPINGS: tuple[Grouping, ...] = ("scene",)


class PredictionNotStored(NotFoundError):
    """No prediction row of the request is in the store (unknown, or still being written)."""


@dataclass(frozen=True)
class FeedbackScore:
    """One agent's scored ground truth; ``scene_key`` is the prediction's scene pseudonym."""

    request_id: str
    model_version: str
    variant: str
    n_steps: int
    ade: float
    fde: float
    scene_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """ADE and FDE of a partial or full future.

    Args:
        predicted: ``(T_pred, 2)`` served forecast.
        truth: ``(n, 2)`` the first ``n <= T_pred`` true positions.

    Returns:
        Mean error over the ``n`` steps given, and the error at the last step given.
    """
    n = truth.shape[0]
    if n == 0 or n > predicted.shape[0]:
        raise ValidationError(
            f"ground truth must have 1..{predicted.shape[0]} positions, got {n}",
            details=[{"loc": ["body", "positions"], "msg": "wrong number of positions"}],
        )
    err = np.linalg.norm(predicted[:n] - truth, axis=-1)  # (n,)
    return float(err.mean()), float(err[-1])


def record_feedback(
    store: Store, *, request_id: str, agent_key: str, positions: list[list[float]]
) -> FeedbackScore:
    """Score and store one agent's ground truth (see :func:`record_feedback_many`)."""
    return record_feedback_many(store, request_id=request_id, truths=[(agent_key, positions)])[0]


def record_feedback_many(
    store: Store, *, request_id: str, truths: list[tuple[str, list[list[float]]]]
) -> list[FeedbackScore]:
    """Score ground truth of agents of one request against their logged predictions and store
    it, all or nothing (once per request and agent).

    Args:
        truths: ``(agent_key, positions (n, 2))`` per agent.

    Raises:
        PredictionNotStored: no prediction row of the request is stored (yet).
        NotFoundError: the request's predictions are stored, but not for one of the agents.
        ConflictError: feedback for this request and one of the agents was already recorded.
        ValidationError: more positions than were predicted.
    """
    wanted = {key for key, _ in truths}
    with store.session() as session:
        # One statement, so one snapshot: SQLite starts no transaction for reads, and an
        # agents query followed by an "any row of the request" query could see the rows
        # committed between them (no agent, yet a request: a 404 instead of a wait).
        rows = session.scalars(
            select(PredictionRecord).where(PredictionRecord.request_id == request_id)
        ).all()
    logged = {p.agent_key: p for p in rows if p.agent_key in wanted}
    if not rows:
        raise PredictionNotStored(
            f"no prediction logged for request {request_id!r} (unknown, or still being written)",
            details=[{"loc": ["body", "request_id"], "msg": "unknown request"}],
        )
    scored: list[tuple[str, np.ndarray, FeedbackScore]] = []
    for i, (agent_key, positions) in enumerate(truths):
        pred = logged.get(agent_key)
        if pred is None:
            raise NotFoundError(
                f"request {request_id!r} has no prediction for agent {i} of the feedback",
                details=[{"loc": ["body", "agent_id"], "msg": "unknown agent"}],
            )
        truth = np.asarray(positions, dtype=np.float64)  # (n, 2)
        ade, fde = score(np.asarray(pred.outputs, dtype=np.float64), truth)
        result = FeedbackScore(
            request_id,
            pred.model_version,
            pred.variant,
            int(truth.shape[0]),
            ade,
            fde,
            scene_key=pred.scene_key,
        )
        scored.append((agent_key, truth, result))
    now = datetime.now(UTC)
    try:
        with store.session() as session:
            session.add_all(
                Feedback(
                    request_id=request_id,
                    agent_key=agent_key,
                    created_at=now,
                    model_version=result.model_version,
                    variant=result.variant,
                    positions=truth.tolist(),
                    n_steps=result.n_steps,
                    ade=result.ade,
                    fde=result.fde,
                )
                for agent_key, truth, result in scored
            )
    except IntegrityError:
        raise ConflictError(
            f"feedback for request {request_id!r} was already recorded for an agent given",
            details=[{"loc": ["body", "request_id"], "msg": "duplicate feedback"}],
        ) from None
    return [result for _, _, result in scored]


def grouping(by: str | None) -> Grouping | None:
    """``by`` as a query parameter gives it: ``None`` or one of :data:`GROUPINGS`.

    Raises:
        ValidationError: any other value (naming the ``by`` parameter).
    """
    if by is None:
        return None
    for known in GROUPINGS:
        if by == known:
            return known
    raise ValidationError(
        f"invalid by {by!r}: online accuracy can be grouped by {', '.join(GROUPINGS)} only",
        details=[{"loc": ["by"], "msg": f"expected one of {', '.join(GROUPINGS)}"}],
    )


def online_performance(
    store: Store,
    *,
    window: timedelta,
    now: datetime | None = None,
    by: Grouping | None = None,
) -> list[dict[str, Any]]:
    """Online accuracy of the feedback scored in the window.

    One row per model version and variant (and per scene with ``by="scene"``): ``n`` scored
    agents, mean ``ade`` and ``fde``, and ``miss_rate``, the share of them whose FDE (the error
    at the last position given) is above :data:`~trajops.evaluation.metrics.MISS_THRESHOLD_M`.
    With ``by="scene"`` each row also has ``scene_key``, the pseudonymised scene of the scored
    prediction (``None`` for requests sent without a scene, or whose prediction row is gone).
    """
    since = (now or datetime.now(UTC)) - window
    missed = case((Feedback.fde > MISS_THRESHOLD_M, 1.0), else_=0.0)
    scene = PredictionRecord.scene_key
    keys: list[Any] = [Feedback.model_version, Feedback.variant]
    order: list[Any] = list(keys)
    stmt = select(
        *keys,
        func.count(Feedback.id),
        func.avg(Feedback.ade),
        func.avg(Feedback.fde),
        func.avg(missed),
    ).where(Feedback.created_at >= since)
    if by == "scene":
        stmt = stmt.outerjoin(  # the unique (request_id, agent_key) index of predictions
            PredictionRecord,
            and_(
                PredictionRecord.request_id == Feedback.request_id,
                PredictionRecord.agent_key == Feedback.agent_key,
            ),
        ).add_columns(scene)
        keys.append(scene)
        order += [scene.is_(None), scene]  # no scene last, on SQLite and PostgreSQL alike
    with store.session() as session:
        rows = session.execute(stmt.group_by(*keys).order_by(*order)).all()
    out = []
    for version, variant, n, ade, fde, miss, *scene_key in rows:
        row: dict[str, Any] = {
            "model_version": version,
            "variant": variant,
            "n": int(n),
            "ade": float(ade),
            "fde": float(fde),
            "miss_rate": float(miss),
        }
        if by == "scene":
            row["scene_key"] = scene_key[0]
        out.append(row)
    return out

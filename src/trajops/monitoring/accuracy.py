"""Online accuracy: ground truth arriving after the fact is scored against what was served."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from trajops.errors import ConflictError, NotFoundError, ValidationError
from trajops.store.db import Store
from trajops.store.models import Feedback, PredictionRecord


@dataclass(frozen=True)
class FeedbackScore:
    request_id: str
    model_version: str
    variant: str
    n_steps: int
    ade: float
    fde: float

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
    """Score ground truth against the logged prediction and store it (once per request and agent).

    Raises:
        NotFoundError: no prediction logged for this request and agent (yet).
        ConflictError: feedback for this request and agent was already recorded.
        ValidationError: more positions than were predicted.
    """
    with store.session() as session:
        pred = session.execute(
            select(PredictionRecord).where(
                PredictionRecord.request_id == request_id, PredictionRecord.agent_key == agent_key
            )
        ).scalar_one_or_none()
        if pred is None:
            raise NotFoundError(
                f"no prediction logged for request {request_id!r} and this agent "
                "(unknown ids, or still in the write queue: retry in a second)",
                details=[{"loc": ["body", "request_id"], "msg": "unknown request/agent"}],
            )
        truth = np.asarray(positions, dtype=np.float64)  # (n, 2)
        ade, fde = score(np.asarray(pred.outputs, dtype=np.float64), truth)
        result = FeedbackScore(
            request_id, pred.model_version, pred.variant, int(truth.shape[0]), ade, fde
        )
    try:
        with store.session() as session:
            session.add(
                Feedback(
                    request_id=request_id,
                    agent_key=agent_key,
                    created_at=datetime.now(UTC),
                    model_version=result.model_version,
                    variant=result.variant,
                    positions=truth.tolist(),
                    n_steps=result.n_steps,
                    ade=ade,
                    fde=fde,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"feedback for request {request_id!r} and this agent was already recorded",
            details=[{"loc": ["body", "request_id"], "msg": "duplicate feedback"}],
        ) from None
    return result


def online_performance(
    store: Store, *, window: timedelta, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per model version and variant: ``n``, mean ``ade`` and ``fde`` of feedback in the window."""
    since = (now or datetime.now(UTC)) - window
    stmt = (
        select(
            Feedback.model_version,
            Feedback.variant,
            func.count(Feedback.id),
            func.avg(Feedback.ade),
            func.avg(Feedback.fde),
        )
        .where(Feedback.created_at >= since)
        .group_by(Feedback.model_version, Feedback.variant)
        .order_by(Feedback.model_version, Feedback.variant)
    )
    with store.session() as session:
        rows = session.execute(stmt).all()
    return [
        {"model_version": v, "variant": var, "n": int(n), "ade": float(a), "fde": float(f)}
        for v, var, n, a, f in rows
    ]

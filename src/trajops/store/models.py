"""Tables of the operational store. Agent ids are stored only as keyed pseudonyms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every trajops table."""


class PredictionRecord(Base):
    """One agent's forecast as served (one row per agent of a request)."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    model_name: Mapped[str] = mapped_column(String(200), nullable=False)
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)
    variant: Mapped[str] = mapped_column(String(64), nullable=False, default="default")
    agent_key: Mapped[str] = mapped_column(String(64), nullable=False)
    scene_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    inputs: Mapped[list[Any]] = mapped_column(JSON, nullable=False)  # (T_obs, 2)
    outputs: Mapped[list[Any]] = mapped_column(JSON, nullable=False)  # (T_pred, 2)
    step_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.4)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        Index("ix_predictions_request_agent", "request_id", "agent_key", unique=True),
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_model_version", "model_version"),
    )


class Feedback(Base):
    """Ground truth for one served agent, scored against what was predicted."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    agent_key: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)
    variant: Mapped[str] = mapped_column(String(64), nullable=False, default="default")
    positions: Mapped[list[Any]] = mapped_column(JSON, nullable=False)  # (n_steps, 2)
    n_steps: Mapped[int] = mapped_column(Integer, nullable=False)
    ade: Mapped[float] = mapped_column(Float, nullable=False)
    fde: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        Index("ix_feedback_request_agent", "request_id", "agent_key", unique=True),
        Index("ix_feedback_created_at", "created_at"),
    )


class DriftReport(Base):
    """Summary of one drift run; the HTML report lives at ``report_path``."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    n_reference: Mapped[int] = mapped_column(Integer, nullable=False)
    n_current: Mapped[int] = mapped_column(Integer, nullable=False)
    dataset_drift: Mapped[bool] = mapped_column(Boolean, nullable=False)
    drifted_features: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class Alert(Base):
    """An alert; repeated firings of the same rule and key update one row (de-duplication)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    severity: Mapped[str] = mapped_column(String(20), nullable=False, default="warning")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="firing")
    message: Mapped[str] = mapped_column(Text, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    last_seen: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    __table_args__ = (Index("ix_alerts_rule_key_status", "rule", "key", "status"),)

"""Tables of the operational store. Agent ids are stored only as keyed pseudonyms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
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
    # (T_obs, 2) and (T_pred, 2), encoded by the API process (trajops.store.json_text)
    inputs: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    outputs: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    step_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.4)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    # the client's time of the last observed position (streamed tracks), when plausible
    observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_predictions_request_agent", "request_id", "agent_key", unique=True),
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_model_version", "model_version"),
        Index("ix_predictions_scene_key", "scene_key"),
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
    scene_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a scene's own run


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


class ApiKey(Base):
    """An API key: only HMAC-SHA256(pepper, token) is stored, never the token."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public key id, in the token
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # hex HMAC-SHA256
    scopes: Mapped[str] = mapped_column(String(200), nullable=False)  # comma-separated
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    owner_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # users.id

    __table_args__ = (Index("ix_api_keys_name", "name"),)


class User(Base):
    """A person: a role, an argon2 password hash (local users) or an OIDC subject (SSO)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="local")
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserSession(Base):
    """A signed-in session: only HMAC-SHA256(pepper, token) is stored; it expires."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    method: Mapped[str] = mapped_column(String(16), nullable=False, default="password")

    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)


class AuditEntry(Base):
    """One hash-chained audit row: ``hash = sha256(prev_hash + canonical JSON of the row)``.

    ``id`` is the position in the chain, assigned under a lock when the row is inserted.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(32), nullable=False)  # idempotent replay
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False, default="http")
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    route: Mapped[str] = mapped_column(String(300), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    client_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # pseudonym
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_audit_log_record_id", "record_id", unique=True),
        Index("ix_audit_log_created_at", "created_at"),
    )


class AuditAnchor(Base):
    """Where the audit chain restarts after retention purged its oldest rows."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    last_purged_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_purged_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    rows_purged: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Experiment(Base):
    """An A/B experiment: its arms and settings (``spec``), status, verdict and alias snapshot."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="running")
    mode: Mapped[str] = mapped_column(String(10), nullable=False, default="split")
    unit: Mapped[str] = mapped_column(String(10), nullable=False, default="agent")
    salt: Mapped[str] = mapped_column(String(64), nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    aliases_at_start: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    verdict: Mapped[str] = mapped_column(String(32), nullable=False, default="continue")
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")

    __table_args__ = (Index("ix_experiments_status", "status"),)


class ExperimentExposure(Base):
    """One request served (or shadow-scored) by one arm of an experiment."""

    __tablename__ = "experiment_exposures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(32), nullable=False)
    arm: Mapped[str] = mapped_column(String(32), nullable=False)
    shadow: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    unit_key: Mapped[str] = mapped_column(String(32), nullable=False)  # salted hash, not the id
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    n_agents: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    error: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    invalid: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (
        Index(
            "ix_experiment_exposures_natural",
            "experiment_id",
            "request_id",
            "shadow",
            unique=True,
        ),
    )


class ShadowPrediction(Base):
    """A challenger's forecast of one agent in shadow mode, paired with the served request."""

    __tablename__ = "experiment_shadow_predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(32), nullable=False)
    arm: Mapped[str] = mapped_column(String(32), nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    agent_key: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)
    outputs: Mapped[list[Any]] = mapped_column(  # (T_pred, 2), as predictions.outputs
        JSON, nullable=False
    )

    __table_args__ = (
        Index(
            "ix_experiment_shadow_natural",
            "experiment_id",
            "request_id",
            "agent_key",
            unique=True,
        ),
    )

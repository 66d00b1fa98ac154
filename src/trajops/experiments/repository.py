"""Experiments in the operational store: create, read, end, and collect per-arm samples.

Exposures (one row per request and arm) and shadow predictions are written by the serving
hot path through the asynchronous :class:`~trajops.store.LogWriter`; :meth:`record_exposure`
here is the synchronous path used by the CLI, jobs and simulations. Scored feedback is joined
by the arm's ``variant`` (split mode), or pairs the served control's feedback with the shadow
challenger's forecast of the same request and agent (shadow mode).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from trajops.errors import ConflictError, NotFoundError
from trajops.experiments.config import ExperimentSpec, variant_name
from trajops.store.db import Store
from trajops.store.models import Experiment, ExperimentExposure, Feedback, ShadowPrediction

ACTIVE = "running"
STATUSES = ("running", "stopped", "rolled_back", "promoted")


@dataclass(frozen=True)
class ExperimentRecord:
    """A stored experiment."""

    id: str
    spec: ExperimentSpec
    status: str
    salt: str
    created_at: datetime
    ended_at: datetime | None
    verdict: str
    reason: str
    aliases_at_start: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.spec.name,
            "status": self.status,
            "mode": self.spec.mode,
            "unit": self.spec.unit,
            "created_at": self.created_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "verdict": self.verdict,
            "reason": self.reason,
            "aliases_at_start": self.aliases_at_start,
            "spec": self.spec.to_dict(),
        }


@dataclass
class ArmSamples:
    """What one arm collected. Metric arrays are in feedback arrival order."""

    requests: int = 0
    units: int = 0
    errors: int = 0
    invalid: int = 0
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (requests,)
    ade: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_feedback,)
    fde: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_feedback,)


def _to_record(row: Experiment) -> ExperimentRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    ended = row.ended_at
    if ended is not None and ended.tzinfo is None:
        ended = ended.replace(tzinfo=UTC)
    return ExperimentRecord(
        id=row.id,
        spec=ExperimentSpec.from_dict(row.spec),
        status=row.status,
        salt=row.salt,
        created_at=created,
        ended_at=ended,
        verdict=row.verdict,
        reason=row.reason,
        aliases_at_start=dict(row.aliases_at_start or {}),
    )


class ExperimentRepository:
    """CRUD of experiments and the queries behind their metrics."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self, spec: ExperimentSpec, *, aliases: dict[str, Any] | None = None
    ) -> ExperimentRecord:
        """Store a new running experiment.

        Raises:
            ConflictError: another experiment is running (one at a time routes traffic).
        """
        with self.store.session() as session:
            running = session.execute(
                select(Experiment.id, Experiment.name).where(Experiment.status == ACTIVE)
            ).first()
            if running is not None:
                raise ConflictError(
                    f"experiment {running[0]} ({running[1]!r}) is still running; stop it first",
                    details=[{"loc": ["experiments", running[0]], "msg": "running"}],
                )
            row = Experiment(
                id=secrets.token_hex(6),
                name=spec.name,
                status=ACTIVE,
                mode=spec.mode,
                unit=spec.unit,
                salt=secrets.token_hex(16),
                spec=spec.to_dict(),
                aliases_at_start=aliases or {},
                created_at=datetime.now(UTC),
                verdict="continue",
                reason="",
            )
            session.add(row)
            session.flush()
            return _to_record(row)

    def get(self, experiment_id: str) -> ExperimentRecord:
        """Raises NotFoundError for an unknown id."""
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            if row is None:
                raise NotFoundError(
                    f"no experiment {experiment_id!r}",
                    details=[{"loc": ["experiment_id"], "msg": "unknown experiment"}],
                )
            return _to_record(row)

    def list(self, *, status: str | None = None, limit: int = 100) -> list[ExperimentRecord]:
        stmt = select(Experiment).order_by(Experiment.created_at.desc()).limit(limit)
        if status:
            stmt = stmt.where(Experiment.status == status)
        with self.store.session() as session:
            return [_to_record(r) for r in session.execute(stmt).scalars()]

    def running(self) -> ExperimentRecord | None:
        """The experiment that routes traffic now, if any."""
        found = self.list(status=ACTIVE, limit=1)
        return found[0] if found else None

    def end(
        self, experiment_id: str, *, status: str, verdict: str, reason: str
    ) -> ExperimentRecord:
        """Mark an experiment ended (idempotent for an already-ended one: nothing changes).

        Raises:
            ConflictError: it already ended with another status.
        """
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no experiment {experiment_id!r}")
            if row.status != ACTIVE:
                if row.status == status:
                    return _to_record(row)
                raise ConflictError(
                    f"experiment {experiment_id} already ended ({row.status}: {row.reason})"
                )
            row.status, row.verdict, row.reason = status, verdict, reason
            row.ended_at = datetime.now(UTC)
            return _to_record(row)

    def set_verdict(self, experiment_id: str, verdict: str) -> None:
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            if row is not None and row.status == ACTIVE:
                row.verdict = verdict

    def mark_promoted(self, experiment_id: str, reason: str) -> ExperimentRecord:
        """Record that an ended (or running) experiment's challenger was promoted."""
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no experiment {experiment_id!r}")
            row.status, row.reason = "promoted", reason
            row.ended_at = row.ended_at or datetime.now(UTC)
            return _to_record(row)

    # --- synchronous writes (CLI, jobs, simulations) -------------------------------
    def record_exposure(self, row: dict[str, Any]) -> None:
        """Insert one exposure row (columns of ``experiment_exposures``); duplicates are ignored."""
        try:
            with self.store.session() as session:
                session.add(ExperimentExposure(**row))
        except IntegrityError:
            return

    # --- samples --------------------------------------------------------------------
    def samples(self, record: ExperimentRecord) -> dict[str, ArmSamples]:
        """Per arm: request counts, units, errors, latencies and scored ADE/FDE."""
        out = {arm.name: ArmSamples() for arm in record.spec.arms}
        with self.store.session() as session:
            rows = session.execute(
                select(
                    ExperimentExposure.arm,
                    ExperimentExposure.shadow,
                    ExperimentExposure.unit_key,
                    ExperimentExposure.latency_ms,
                    ExperimentExposure.error,
                    ExperimentExposure.invalid,
                )
                .where(ExperimentExposure.experiment_id == record.id)
                .order_by(ExperimentExposure.id)
            ).all()
            by_arm: dict[str, list[Any]] = {}
            for row in rows:
                by_arm.setdefault(row[0], []).append(row)
            for arm, arm_rows in by_arm.items():
                if arm not in out:
                    continue
                s = out[arm]
                s.requests = len(arm_rows)
                s.units = len({r[2] for r in arm_rows if not r[1]})
                s.errors = sum(1 for r in arm_rows if r[4])
                s.invalid = sum(1 for r in arm_rows if r[5])
                s.latency_ms = np.array([r[3] for r in arm_rows], dtype=np.float64)
            if record.spec.mode == "split":
                self._split_metrics(session, record, out)
            else:
                self._paired_metrics(session, record, out)
        return out

    def _split_metrics(
        self, session: Any, record: ExperimentRecord, out: dict[str, ArmSamples]
    ) -> None:
        variants = {variant_name(record.id, a.name): a.name for a in record.spec.arms}
        rows = session.execute(
            select(Feedback.variant, Feedback.ade, Feedback.fde)
            .where(Feedback.variant.in_(list(variants)))
            .order_by(Feedback.id)
        ).all()
        for arm_variant, arm in variants.items():
            mine = [(r[1], r[2]) for r in rows if r[0] == arm_variant]
            values = np.array(mine, dtype=np.float64).reshape(-1, 2)  # (n, 2)
            out[arm].ade, out[arm].fde = values[:, 0], values[:, 1]

    def _paired_metrics(
        self, session: Any, record: ExperimentRecord, out: dict[str, ArmSamples]
    ) -> None:
        control, challenger = record.spec.arms[0].name, record.spec.arms[1].name
        rows = session.execute(
            select(Feedback.ade, Feedback.fde, Feedback.positions, ShadowPrediction.outputs)
            .join(
                ShadowPrediction,
                (ShadowPrediction.request_id == Feedback.request_id)
                & (ShadowPrediction.agent_key == Feedback.agent_key),
            )
            .where(
                ShadowPrediction.experiment_id == record.id,
                Feedback.variant == variant_name(record.id, control),
            )
            .order_by(Feedback.id)
        ).all()
        ctrl = np.zeros((len(rows), 2))  # (n, [ade, fde])
        chal = np.zeros((len(rows), 2))
        for i, (ade, fde, positions, outputs) in enumerate(rows):
            truth = np.asarray(positions, dtype=np.float64)  # (k, 2)
            pred = np.asarray(outputs, dtype=np.float64)[: len(truth)]  # (k, 2)
            err = np.linalg.norm(pred - truth, axis=-1)  # (k,)
            ctrl[i] = ade, fde
            chal[i] = err.mean(), err[-1]
        out[control].ade, out[control].fde = ctrl[:, 0], ctrl[:, 1]
        out[challenger].ade, out[challenger].fde = chal[:, 0], chal[:, 1]

"""Retention (GDPR art. 5(1)(e)): purge rows older than the retention periods.

* **Purge**: every table with a data subject's pseudonym (the data map of
  :mod:`trajops.privacy.subjects`: predictions, feedback, shadow predictions, experiment
  exposures) loses its rows older than ``retention_days``. Audit rows are evidence of who did what and are kept longer
  (``audit_retention_days``); when they go, the oldest rows are cut as one prefix of the chain
  and an anchor (id and hash of the last purged row) is stored and confirmed by a
  ``retention.purge`` row appended to the chain, so ``trajops audit verify`` stays meaningful.

Erasure and access are :mod:`trajops.privacy.subjects`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from trajops.security._time import utc, utcnow
from trajops.security.audit import AuditRecord, audit_rows
from trajops.security.audit_chain import insert_chained, latest_anchor, lock_chain
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import (
    AuditAnchor,
    AuditEntry,
    Base,
    ExperimentExposure,
    Feedback,
    PredictionRecord,
    ShadowPrediction,
)


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or would remove, for a dry run)."""

    cutoff: datetime
    audit_cutoff: datetime
    predictions: int
    feedback: int
    audit_rows: int
    anchor_id: int | None
    dry_run: bool
    experiment_rows: int = 0
    """Shadow predictions and exposures of A/B experiments."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cutoff"], out["audit_cutoff"] = self.cutoff.isoformat(), self.audit_cutoff.isoformat()
        return out


def _count(session: Any, model: type[Base], *where: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def purge(
    store: Store,
    *,
    older_than: timedelta,
    audit_older_than: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Delete predictions and feedback older than ``older_than`` and audit rows older than
    ``audit_older_than`` (behind a chain anchor), in one transaction that is itself audited.
    """
    now = utc(now or utcnow())
    cutoff, audit_cutoff = now - older_than, now - audit_older_than
    with store.session() as session:
        lock_chain(session)
        old_predictions = (PredictionRecord.created_at < cutoff,)
        old_feedback = (Feedback.created_at < cutoff,)
        n_pred = _count(session, PredictionRecord, *old_predictions)
        n_fb = _count(session, Feedback, *old_feedback)
        old_experiment = [
            (m, (m.created_at < cutoff,)) for m in (ShadowPrediction, ExperimentExposure)
        ]
        n_exp = sum(_count(session, m, *where) for m, where in old_experiment)
        anchor = latest_anchor(session)
        start = int(anchor.last_purged_id) if anchor else 0
        # Purge a prefix of the chain only: up to the first row that must be kept.
        first_kept = session.execute(
            select(func.min(AuditEntry.id)).where(AuditEntry.created_at >= audit_cutoff)
        ).scalar_one()
        if first_kept is None:
            first_kept = (
                session.execute(select(func.max(AuditEntry.id))).scalar_one() or start
            ) + 1
        last_purged = int(first_kept) - 1
        n_audit = (
            _count(session, AuditEntry, AuditEntry.id <= last_purged) if last_purged > start else 0
        )
        anchor_id: int | None = None
        if dry_run:  # nothing written: the transaction commits empty
            return PurgeReport(cutoff, audit_cutoff, n_pred, n_fb, n_audit, None, True, n_exp)
        session.execute(delete(PredictionRecord).where(*old_predictions))
        session.execute(delete(Feedback).where(*old_feedback))
        for model, where in old_experiment:
            session.execute(delete(model).where(*where))
        details: dict[str, Any] = {
            "cutoff": cutoff.isoformat(),
            "audit_cutoff": audit_cutoff.isoformat(),
            "predictions": n_pred,
            "feedback": n_fb,
            "experiment_rows": n_exp,
            "audit_rows": n_audit,
        }
        if n_audit:
            anchor_hash = session.execute(
                select(AuditEntry.hash).where(AuditEntry.id == last_purged)
            ).scalar_one()
            session.execute(delete(AuditEntry).where(AuditEntry.id <= last_purged))
            session.add(
                AuditAnchor(
                    created_at=now,
                    last_purged_id=last_purged,
                    last_purged_hash=anchor_hash,
                    rows_purged=n_audit,
                )
            )
            anchor_id = last_purged
            details.update(anchor_id=last_purged, anchor_hash=anchor_hash)
        event = AuditRecord(
            route="trajops privacy purge",
            method="CLI",
            status=0,
            event="retention.purge",
            details=details,
        )
        insert_chained(session, audit_rows([event]))
    return PurgeReport(cutoff, audit_cutoff, n_pred, n_fb, n_audit, anchor_id, False, n_exp)


def purge_expired(settings: Settings, store: Store | None = None) -> PurgeReport:
    """The scheduled retention task: purge with the configured retention periods."""
    own = store is None
    store = store or Store(settings.resolved_database_url)
    try:
        return purge(
            store,
            older_than=timedelta(days=settings.retention_days),
            audit_older_than=timedelta(days=settings.audit_retention_days),
        )
    finally:
        if own:
            store.dispose()

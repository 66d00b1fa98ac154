"""Retention and data-subject rights: purge old rows, erase a subject, export a subject's data.

* **Purge** (GDPR art. 5(1)(e)): predictions and feedback older than ``retention_days`` are
  deleted. Audit rows are evidence of who did what and are kept longer
  (``audit_retention_days``); when they go, the oldest rows are cut as one prefix of the chain
  and an anchor (id and hash of the last purged row) is stored and confirmed by a
  ``retention.purge`` row appended to the chain, so ``trajops audit verify`` stays meaningful.
* **Erasure** (art. 17): every prediction and feedback row linked to the subject's pseudonym
  is deleted in one transaction with a ``privacy.erase`` audit row that carries counts and a
  separate keyed reference (namespace ``erasure``), never the raw id or the stored pseudonym.
* **Access** (art. 15): everything held about the subject as one JSON document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from trajops.privacy.pseudonym import Pseudonymiser
from trajops.security._time import utc, utcnow
from trajops.security.audit import (
    AuditRecord,
    audit_rows,
    insert_chained,
    latest_anchor,
    lock_chain,
)
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import AuditAnchor, AuditEntry, Base, Feedback, PredictionRecord


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
            return PurgeReport(cutoff, audit_cutoff, n_pred, n_fb, n_audit, None, True)
        session.execute(delete(PredictionRecord).where(*old_predictions))
        session.execute(delete(Feedback).where(*old_feedback))
        details: dict[str, Any] = {
            "cutoff": cutoff.isoformat(),
            "audit_cutoff": audit_cutoff.isoformat(),
            "predictions": n_pred,
            "feedback": n_fb,
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
    return PurgeReport(cutoff, audit_cutoff, n_pred, n_fb, n_audit, anchor_id, False)


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


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed; ``pending_spooled`` rows still wait in a spool file."""

    subject_ref: str
    predictions: int
    feedback: int
    audit_id: int
    pending_spooled: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spooled_rows(spool_dir: Path | None, agent_key: str) -> int:
    if spool_dir is None or not spool_dir.exists():
        return 0
    needle = f'"agent_key":"{agent_key}"'
    total = 0
    for path in spool_dir.glob("*.jsonl"):
        with path.open(encoding="utf-8") as fh:
            total += sum(needle in line for line in fh)
    return total


def erase_subject(
    store: Store, pseudonymise: Pseudonymiser, subject_id: str, *, spool_dir: Path | None = None
) -> ErasureReport:
    """Delete every prediction and feedback row of ``subject_id`` and audit the erasure.

    Args:
        store: the operational store.
        pseudonymise: the same keyed pseudonymiser that stored the rows.
        subject_id: the raw agent id (used only to derive its pseudonym; never stored).
        spool_dir: the log writer's spool folder; rows of the subject still waiting there are
            counted so the operator can run the erasure again once they have been written.
    """
    agent_key = pseudonymise(subject_id)
    subject_ref = pseudonymise(subject_id, namespace="erasure")
    with store.session() as session:
        n_pred = _count(session, PredictionRecord, PredictionRecord.agent_key == agent_key)
        n_fb = _count(session, Feedback, Feedback.agent_key == agent_key)
        session.execute(delete(PredictionRecord).where(PredictionRecord.agent_key == agent_key))
        session.execute(delete(Feedback).where(Feedback.agent_key == agent_key))
        event = AuditRecord(
            route="trajops privacy erase",
            method="CLI",
            status=0,
            event="privacy.erase",
            details={"subject_ref": subject_ref, "predictions": n_pred, "feedback": n_fb},
        )
        (row,) = insert_chained(session, audit_rows([event]))
    return ErasureReport(
        subject_ref, n_pred, n_fb, int(row["id"]), _spooled_rows(spool_dir, agent_key)
    )


def _plain(model: Base) -> dict[str, Any]:
    out = {}
    for col in model.__table__.columns:
        value = getattr(model, col.key)
        out[col.key] = utc(value).isoformat() if isinstance(value, datetime) else value
    return out


def export_subject(store: Store, pseudonymise: Pseudonymiser, subject_id: str) -> dict[str, Any]:
    """Everything stored about ``subject_id`` (right of access), as one JSON-ready document."""
    agent_key = pseudonymise(subject_id)
    subject_ref = pseudonymise(subject_id, namespace="erasure")
    with store.session() as session:
        predictions = session.scalars(
            select(PredictionRecord)
            .where(PredictionRecord.agent_key == agent_key)
            .order_by(PredictionRecord.created_at, PredictionRecord.id)
        ).all()
        feedback = session.scalars(
            select(Feedback)
            .where(Feedback.agent_key == agent_key)
            .order_by(Feedback.created_at, Feedback.id)
        ).all()
        erasures = [
            e
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.event == "privacy.erase")
                .order_by(AuditEntry.id)
            )
            if e.details.get("subject_ref") == subject_ref
        ]
        return {
            "subject": {
                "stored_as": agent_key,
                "note": "identifiers are stored only as keyed pseudonyms",
            },
            "exported_at": utcnow().isoformat(),
            "predictions": [_plain(p) for p in predictions],
            "feedback": [_plain(f) for f in feedback],
            "erasures": [_plain(e) for e in erasures],
        }

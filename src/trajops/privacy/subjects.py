"""Data-subject rights: the data map, erasure (GDPR art. 17) and access (art. 15).

The data map names every table that holds a data subject's pseudonym and how the subject's
rows are found (:data:`SUBJECT_TABLES`), and every other column that holds a pseudonym with the
reason it is not the subject's (:data:`NOT_SUBJECT_COLUMNS`); a test enumerates the schema and
fails when a new table or pseudonym column is in neither.

* **Erasure**: every row of the subject in every table of the map is deleted in one
  transaction with a ``privacy.erase`` audit row that carries counts and a separate keyed
  reference (namespace ``erasure``), never the raw id or the stored pseudonym.
* **Access**: everything held about the subject, table by table, as one JSON document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, select
from sqlalchemy.orm import Session

from trajops.privacy.pseudonym import Pseudonymiser, unit_hash
from trajops.security._time import utc, utcnow
from trajops.security.audit import AuditRecord, audit_rows
from trajops.security.audit_chain import insert_chained
from trajops.store.db import Store
from trajops.store.models import (
    AuditEntry,
    Base,
    Experiment,
    ExperimentExposure,
    Feedback,
    PredictionRecord,
    ShadowPrediction,
)

Finder = Callable[[Session, str, str], ColumnElement[bool]]
"""``finder(session, subject_id, agent_key)`` -> the condition selecting the subject's rows."""


def _by_agent_key(model: Any) -> Finder:
    return lambda _session, _subject, agent_key: model.agent_key == agent_key


def _exposures(session: Session, subject_id: str, _agent_key: str) -> ColumnElement[bool]:
    """Exposures of experiments that assign by agent: their unit key is a salted hash of the
    agent id, one per experiment."""
    salts = session.execute(select(Experiment.salt).where(Experiment.unit == "agent")).scalars()
    keys = [unit_hash(salt, subject_id) for salt in salts]
    return ExperimentExposure.unit_key.in_(keys) if keys else false()


SUBJECT_TABLES: dict[str, tuple[type[Base], Finder]] = {
    "predictions": (PredictionRecord, _by_agent_key(PredictionRecord)),
    "feedback": (Feedback, _by_agent_key(Feedback)),
    "experiment_shadow_predictions": (ShadowPrediction, _by_agent_key(ShadowPrediction)),
    "experiment_exposures": (ExperimentExposure, _exposures),
}
"""Every table with rows about a data subject (an agent), and how they are found."""

NOT_SUBJECT_COLUMNS: dict[str, str] = {
    "predictions.scene_key": "a scene, not a person; the rows go with their agent_key",
    "drift_reports.scene_key": "a scene, not a person: the scene a drift run compared",
    "audit_log.client_key": "the calling client's address (evidence of access), kept for "
    "audit_retention_days and cut with the chain's prefix",
}
"""Pseudonym columns that do not identify a data subject, and why."""


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed; ``pending_spooled`` rows still wait in a spool file."""

    subject_ref: str
    predictions: int
    feedback: int
    audit_id: int
    pending_spooled: int
    experiment_rows: dict[str, int] = field(default_factory=dict)
    """Rows removed from the experiment tables, by table."""

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
    """Delete every row of ``subject_id`` in every table of the data map and audit it.

    Args:
        store: the operational store.
        pseudonymise: the same keyed pseudonymiser that stored the rows.
        subject_id: the raw agent id (used only to derive its pseudonym; never stored).
        spool_dir: the log writer's spool folder; rows of the subject still waiting there are
            counted so the operator can run the erasure again once they have been written.
    """
    agent_key = pseudonymise(subject_id)
    subject_ref = pseudonymise(subject_id, namespace="erasure")
    counts: dict[str, int] = {}
    with store.session() as session:
        for table, (model, finder) in SUBJECT_TABLES.items():
            where = finder(session, subject_id, agent_key)
            counts[table] = int(
                session.execute(select(func.count()).select_from(model).where(where)).scalar_one()
            )
            session.execute(delete(model).where(where))
        event = AuditRecord(
            route="trajops privacy erase",
            method="CLI",
            status=0,
            event="privacy.erase",
            details={"subject_ref": subject_ref, **counts},
        )
        (row,) = insert_chained(session, audit_rows([event]))
    return ErasureReport(
        subject_ref,
        counts.pop("predictions"),
        counts.pop("feedback"),
        int(row["id"]),
        _spooled_rows(spool_dir, agent_key),
        counts,
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
        tables = {
            table: [
                _plain(r)
                for r in session.scalars(
                    select(model)
                    .where(finder(session, subject_id, agent_key))
                    .order_by(model.created_at, model.id)  # type: ignore[attr-defined]
                )
            ]
            for table, (model, finder) in SUBJECT_TABLES.items()
        }
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
            **tables,
            "erasures": [_plain(e) for e in erasures],
        }

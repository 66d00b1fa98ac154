"""Retention on a real SQLite store: old rows purged, the audit chain anchored, forgery caught."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests._support.audit import audit_records
from trajops.privacy import Pseudonymiser
from trajops.privacy.retention import purge
from trajops.security._time import utcnow
from trajops.security.audit import append_audit, verify_chain
from trajops.store import PredictionRecord, Store
from trajops.store.models import AuditEntry

PSEUDO = Pseudonymiser(b"k" * 32)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_purge_anchors_the_chain_and_a_forged_anchor_is_caught(store: Store) -> None:
    old = utcnow() - timedelta(days=400)
    append_audit(store, audit_records(5, at=old), pseudonymise=PSEUDO)
    append_audit(store, audit_records(3), pseudonymise=PSEUDO)
    with store.session() as s:
        s.add_all(
            PredictionRecord(
                request_id=f"r{i}", created_at=utcnow() - timedelta(days=age), model_name="m",
                model_version="1", variant="default", agent_key=f"a{i}", inputs=[], outputs=[],
                step_s=0.4, latency_ms=1.0,
            )
            for i, age in enumerate([40, 40, 1])
        )  # fmt: skip
    dry = purge(
        store, older_than=timedelta(days=30), audit_older_than=timedelta(days=365), dry_run=True
    )
    assert (dry.predictions, dry.audit_rows, dry.anchor_id) == (2, 5, None)
    report = purge(store, older_than=timedelta(days=30), audit_older_than=timedelta(days=365))
    assert (report.predictions, report.feedback, report.audit_rows, report.anchor_id) == (
        2,
        0,
        5,
        5,
    )
    result = verify_chain(store)
    assert (result.ok, result.checked, result.head_id) == (True, 4, 9)  # 3 kept + the purge record
    with store.session() as s:
        assert (
            s.scalars(select(AuditEntry.event).where(AuditEntry.id == 9)).one() == "retention.purge"
        )
    # hiding rows 6..9 behind a forged anchor is caught: no purge record confirms it
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_anchors (created_at, last_purged_id, last_purged_hash, rows_purged)"
                " SELECT created_at, id, hash, 4 FROM audit_log WHERE id = 8"
            )
        )
    forged = verify_chain(store)
    assert not forged.ok and "not confirmed" in (forged.reason or "")

"""The hash-chained audit trail on a real SQLite store: verification, tampering, deletion, export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests._support.audit import audit_records
from trajops.privacy import Pseudonymiser
from trajops.security.audit import append_audit, audit_rows, export_audit, verify_chain, verify_rows
from trajops.security.audit_chain import GENESIS
from trajops.store import Store
from trajops.store.models import AuditEntry

PSEUDO = Pseudonymiser(b"k" * 32)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_a_clean_chain_verifies_and_stores_no_raw_address(store: Store) -> None:
    assert append_audit(store, audit_records(5), pseudonymise=PSEUDO) == [1, 2, 3, 4, 5]
    result = verify_chain(store)
    assert (result.ok, result.checked, result.head_id) == (True, 5, 5)
    with store.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert rows[0].prev_hash == GENESIS and rows[1].prev_hash == rows[0].hash
        assert {r.client_key for r in rows} == {PSEUDO("203.0.113.9", namespace="client")}
        assert rows[0].method == "POST" and rows[0].latency_ms == pytest.approx(1.0)
        dump = json.dumps(
            [{c.key: str(getattr(r, c.key)) for c in AuditEntry.__table__.columns} for r in rows]
        )
    assert "203.0.113.9" not in dump
    assert (
        audit_rows(audit_records(1))[0]["client_key"] is None
    )  # no pseudonymiser: address dropped


def test_an_edited_row_is_named(store: Store) -> None:
    append_audit(store, audit_records(6), pseudonymise=PSEUDO)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET status = 403 WHERE id = 4"))
    result = verify_chain(store)
    assert not result.ok and result.first_bad_id == 4 and "modified" in (result.reason or "")
    assert result.checked == 3


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(store: Store) -> None:
    append_audit(store, audit_records(4), pseudonymise=PSEUDO)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET hash = :h WHERE id = 2"), {"h": "f" * 64})
    result = verify_chain(store)
    assert not result.ok and result.first_bad_id == 2  # own hash no longer matches


def test_deleted_rows_are_named_and_truncation_needs_an_expected_head(store: Store) -> None:
    append_audit(store, audit_records(8), pseudonymise=PSEUDO)
    head = verify_chain(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id IN (3, 4)"))
    result = verify_chain(store)
    assert not result.ok and result.first_bad_id == 3
    assert result.reason == "rows 3..4 missing (deleted) before row 5"
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id >= 3"))
    assert verify_chain(store).ok  # a cut tail is invisible to the chain alone...
    assert head.head_id is not None and head.head_hash is not None
    cut = verify_chain(store, expect=(head.head_id, head.head_hash))
    assert (
        not cut.ok and cut.first_bad_id == 8 and "missing" in (cut.reason or "")
    )  # ...not to an anchor


def test_export_filters_by_time(store: Store) -> None:
    append_audit(store, audit_records(2, at=datetime(2026, 1, 5, tzinfo=UTC)))
    append_audit(store, audit_records(3, at=datetime(2026, 2, 5, tzinfo=UTC)))
    rows = list(export_audit(store, since=datetime(2026, 2, 1, tzinfo=UTC)))
    assert [r["id"] for r in rows] == [3, 4, 5]
    assert rows[0]["created_at"].startswith("2026-02-05") and len(rows[0]["hash"]) == 64
    assert verify_rows(rows, start_id=2, start_hash=rows[0]["prev_hash"]).ok


def test_verify_rows_rejects_out_of_order_rows(store: Store) -> None:
    append_audit(store, audit_records(3))
    rows = list(export_audit(store, since=datetime(2000, 1, 1, tzinfo=UTC)))
    result = verify_rows([rows[0], rows[2], rows[1]])
    assert not result.ok and result.first_bad_id == 2

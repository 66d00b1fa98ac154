"""The hash-chained audit trail on a real SQLite store: tamper, deletion, replay, purge anchors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, text

from trajops._ids import ordered_hex, random_hex
from trajops.privacy import Pseudonymiser
from trajops.privacy.retention import purge
from trajops.security._time import utcnow
from trajops.security.audit import (
    GENESIS,
    AuditRecord,
    _stored_ids,
    append_audit,
    audit_rows,
    digest_payload,
    export_audit,
    insert_chained,
    verify_chain,
    verify_rows,
)
from trajops.store import LogWriter, PredictionRecord, Store
from trajops.store.models import AuditEntry

PSEUDO = Pseudonymiser(b"k" * 32)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def _records(
    n: int, *, at: datetime | None = None, client: str = "203.0.113.9"
) -> list[AuditRecord]:
    return [
        AuditRecord(
            route="/v1/predict",
            method="post",
            status=200,
            latency_ms=1.0 + i / 7,
            key_id="abcdef012345",
            request_id=f"req-{i}",
            model_version="3",
            payload_digest=digest_payload(b'{"agents": []}'),
            client_address=client,
            **({"created_at": at} if at else {}),
        )
        for i in range(n)
    ]


def test_a_clean_chain_verifies_and_stores_no_raw_address(store: Store) -> None:
    assert append_audit(store, _records(5), pseudonymise=PSEUDO) == [1, 2, 3, 4, 5]
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
    assert audit_rows(_records(1))[0]["client_key"] is None  # no pseudonymiser: address dropped


def test_an_edited_row_is_named(store: Store) -> None:
    append_audit(store, _records(6), pseudonymise=PSEUDO)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET status = 403 WHERE id = 4"))
    result = verify_chain(store)
    assert not result.ok and result.first_bad_id == 4 and "modified" in (result.reason or "")
    assert result.checked == 3


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(store: Store) -> None:
    append_audit(store, _records(4), pseudonymise=PSEUDO)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET hash = :h WHERE id = 2"), {"h": "f" * 64})
    result = verify_chain(store)
    assert not result.ok and result.first_bad_id == 2  # own hash no longer matches


def test_deleted_rows_are_named_and_truncation_needs_an_expected_head(store: Store) -> None:
    append_audit(store, _records(8), pseudonymise=PSEUDO)
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


def test_replayed_rows_are_inserted_once(store: Store, tmp_path: Path) -> None:
    rows = audit_rows(_records(3), pseudonymise=PSEUDO)
    with store.session() as s:
        assert len(insert_chained(s, rows)) == 3
    with store.session() as s:
        assert insert_chained(s, rows + audit_rows(_records(1))) != []
    writer = LogWriter(
        store, tmp_path / "spool", hooks={"audit_log": lambda s, r: insert_chained(s, r) and []}
    )
    writer.start()
    writer.submit("audit_log", rows)  # a replay of already stored rows
    writer.close()
    result = verify_chain(store)
    assert (result.ok, result.checked) == (True, 4)


def test_stored_ids_reads_a_range_for_a_live_batch_and_a_list_otherwise(store: Store) -> None:
    ids = [ordered_hex() for _ in range(6)]  # time-ordered, as the writers make them
    rows = audit_rows(_records(3), pseudonymise=PSEUDO)
    for row, record_id in zip(rows, (ids[0], ids[2], ids[4]), strict=True):
        row["record_id"] = record_id  # stored: another writer's rows around ours
    statements: list[str] = []
    event.listens_for(store.engine, "before_cursor_execute")(
        lambda _c, _cur, statement, *_a: statements.append(statement)
    )
    with store.session() as s:
        insert_chained(s, rows)
        statements.clear()
        # in range: the stored id found, another writer's id between ours not reported
        assert _stored_ids(s, {ids[1], ids[2], ids[3]}) == {ids[2]}
        assert _stored_ids(s, {ids[1], ids[3]}) == set()
        assert all("BETWEEN" in st and " IN " not in st for st in statements)
        statements.clear()
        # random ids (a client's, an old spool's), or UUIDv7s far apart: looked up by list
        assert _stored_ids(s, {random_hex(), ids[0]}) == {ids[0]}
        old = f"{int(ids[5][:12], 16) - 60_000:012x}{ids[5][12:]}"  # a minute earlier
        assert _stored_ids(s, {old, ids[4]}) == {ids[4]}
        assert len(statements) == 2 and all(" IN " in st for st in statements)


def test_purge_anchors_the_chain_and_a_forged_anchor_is_caught(store: Store) -> None:
    old = utcnow() - timedelta(days=400)
    append_audit(store, _records(5, at=old), pseudonymise=PSEUDO)
    append_audit(store, _records(3), pseudonymise=PSEUDO)
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


def test_export_filters_by_time(store: Store) -> None:
    append_audit(store, _records(2, at=datetime(2026, 1, 5, tzinfo=UTC)))
    append_audit(store, _records(3, at=datetime(2026, 2, 5, tzinfo=UTC)))
    rows = list(export_audit(store, since=datetime(2026, 2, 1, tzinfo=UTC)))
    assert [r["id"] for r in rows] == [3, 4, 5]
    assert rows[0]["created_at"].startswith("2026-02-05") and len(rows[0]["hash"]) == 64
    assert verify_rows(rows, start_id=2, start_hash=rows[0]["prev_hash"]).ok


def test_verify_rows_rejects_out_of_order_rows(store: Store) -> None:
    append_audit(store, _records(3))
    rows = list(export_audit(store, since=datetime(2000, 1, 1, tzinfo=UTC)))
    result = verify_rows([rows[0], rows[2], rows[1]])
    assert not result.ok and result.first_bad_id == 2

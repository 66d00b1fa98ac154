"""The log writer's inserts: bulk_insert stores exactly what a Core insert stores (the rest goes
through Core), and a batch that is not full gathers rows for `gather_s` (group commit)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.exc import IntegrityError, StatementError

from tests._support.rows import prediction_rows
from trajops.security.audit import AUDIT_HOOKS, audit_row, verify_chain
from trajops.store import Store
from trajops.store import bulk as bulk_module
from trajops.store.bulk import bulk_insert
from trajops.store.models import AuditEntry, Experiment, PredictionRecord
from trajops.store.writer import LogWriter, WriterConfig

PREDICTIONS = PredictionRecord.__table__
AUDIT = AuditEntry.__table__


def _raw(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def _stores(tmp_path: Path) -> tuple[Store, Store]:
    return Store(f"sqlite:///{tmp_path / 'core.db'}"), Store(f"sqlite:///{tmp_path / 'bulk.db'}")


def _count_driver_calls(store: Store) -> list[str]:
    calls: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        calls.append(statement)

    return calls


def _audit_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i + 1,
            "record_id": f"rec{i}",
            "created_at": datetime(2026, 12, 4, 12, 0, i, 123456, tzinfo=UTC),
            "event": "http",
            "key_id": None if i % 2 else "k1",
            "route": "/v1/predict",
            "method": "POST",
            "status": 200,
            "model_version": "1",
            "request_id": f"req{i}",
            "payload_digest": None,
            "latency_ms": 0.25 * i,
            "client_key": "c",
            "details": {} if i % 2 else {"note": "ünïcode", "n": [1, 2.5, None]},
            "prev_hash": "0" * 64,
            "hash": f"{i:064d}",
        }
        for i in range(n)
    ]


def test_driver_path_stores_the_same_values_as_a_core_insert(tmp_path: Path) -> None:
    core, fast = _stores(tmp_path)
    preds = prediction_rows(5)
    preds[1]["scene_key"] = "s1"
    preds[2]["created_at"] = datetime(2026, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=5)))
    preds[3]["inputs"] = [[1e-7, -123.456789]] * 8
    preds[3]["created_at"] = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)  # microsecond 0
    preds[4]["created_at"] = datetime(2026, 12, 6, 1, 2, 3, 456)  # naive: SQLAlchemy's path
    audit = _audit_rows(4)
    calls = _count_driver_calls(fast)
    with core.session() as session:
        session.connection().execute(insert(PREDICTIONS), preds)
        session.connection().execute(insert(AUDIT), audit)
    with fast.session() as session:
        bulk_insert(session, PREDICTIONS, preds, skip_conflicts=True)
        bulk_insert(session, AUDIT, audit, skip_conflicts=False)
    # byte for byte the same stored form (datetimes, JSON text, NULLs, floats)
    for table in ("predictions", "audit_log"):
        assert _raw(tmp_path / "bulk.db", table) == _raw(tmp_path / "core.db", table)
    assert sum("INSERT INTO predictions" in c for c in calls) == 1  # one executemany
    # ... and it was the driver-level path, not the Core fallback
    assert bulk_module._plans[("predictions", tuple(preds[0]), True, "sqlite")] is not None
    assert bulk_module._plans[("audit_log", tuple(audit[0]), False, "sqlite")] is not None
    with fast.session() as session:  # and the ORM reads them back as it wrote them
        stored = session.get(PredictionRecord, 3)
        assert stored is not None and stored.inputs == preds[2]["inputs"]


def test_conflicts_are_skipped_or_fail_the_transaction(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rows = prediction_rows(3)
    with store.session() as session:
        bulk_insert(session, PREDICTIONS, rows, skip_conflicts=True)
    with store.session() as session:  # a replay: the same natural keys are skipped
        bulk_insert(
            session, PREDICTIONS, rows + prediction_rows(1, prefix="new"), skip_conflicts=True
        )
    assert len(_raw(tmp_path / "s.db", "predictions")) == 4
    audit = _audit_rows(2)
    with store.session() as session:
        bulk_insert(session, AUDIT, audit, skip_conflicts=False)
    with pytest.raises(IntegrityError), store.session() as session:
        bulk_insert(session, AUDIT, audit[:1], skip_conflicts=False)
    assert len(_raw(tmp_path / "s.db", "audit_log")) == 2


def test_rows_that_need_core_take_it(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    calls = _count_driver_calls(store)
    # a column with a Python-side default left out: Core fills it in
    rows = prediction_rows(2)
    for row in rows:
        del row["variant"], row["created_at"]
    with store.session() as session:
        bulk_insert(session, PREDICTIONS, rows, skip_conflicts=True)
        stored = session.get(PredictionRecord, 1)
        assert stored is not None and stored.variant == "default" and stored.created_at is not None
    # a later row without a column of the first: Core names the missing value
    ragged = prediction_rows(2, prefix="x")
    del ragged[1]["latency_ms"]
    with pytest.raises(StatementError, match="latency_ms"), store.session() as session:
        bulk_insert(session, PREDICTIONS, ragged, skip_conflicts=True)
    assert len(_raw(tmp_path / "s.db", "predictions")) == 2
    assert calls  # the statements above went through Core's executemany/execute
    # an empty batch is a no-op
    with store.session() as session:
        bulk_insert(session, Experiment.__table__, [], skip_conflicts=True)


def test_the_plan_is_built_once_per_table_and_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_module, "_plans", {})
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    for batch in range(3):
        with store.session() as session:
            bulk_insert(
                session, PREDICTIONS, prediction_rows(2, prefix=f"b{batch}"), skip_conflicts=True
            )
    assert len(bulk_module._plans) == 1


def test_audit_rows_through_the_writer_form_a_valid_chain(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool", hooks=AUDIT_HOOKS).start()
    writer.submit(
        "audit_log", [audit_row(route="/v1/predict", method="post", status=200) for _ in range(50)]
    )
    writer.submit(
        "audit_log", [audit_row(route="/x", method="GET", status=404, details={"a": [1, "é"]})]
    )
    assert writer.flush(10)
    writer.close()
    report = verify_chain(store)
    assert report.ok and report.checked == 51


def _commits(store: Store) -> Callable[[], int]:
    seen = [0]

    @event.listens_for(store.engine, "commit")
    def _commit(_conn: Any) -> None:
        seen[0] += 1

    return lambda: seen[0]


def test_a_batch_that_is_not_full_gathers_rows_for_gather_s(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    commits = _commits(store)
    writer = LogWriter(
        store, tmp_path / "spool", WriterConfig(batch_size=100, gather_s=0.5)
    ).start()
    writer.submit("predictions", prediction_rows(1, prefix="a"))
    time.sleep(0.1)
    writer.submit("predictions", prediction_rows(1, prefix="b"))  # within the first's wait
    assert writer.flush(5)
    assert commits() == 1 and writer.written == 2
    writer.close()


def test_a_full_batch_does_not_wait_and_close_does_not_wait_for_gather(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool", WriterConfig(batch_size=10, gather_s=30))
    writer.submit("predictions", prediction_rows(25))
    started = time.monotonic()
    writer.start()
    # two full batches at once; the last 5 rows wait for more (30 s) until close ends the wait
    deadline = time.monotonic() + 5
    while writer.written < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.written == 20
    writer.close()
    assert writer.written == 25 and time.monotonic() - started < 5


def test_rows_beyond_the_room_left_after_gathering_are_not_lost(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool", WriterConfig(batch_size=5, gather_s=0.3)).start()
    writer.submit("predictions", prediction_rows(3, prefix="a"))
    time.sleep(0.1)  # the writer holds 3 rows and waits for more
    writer.submit("predictions", prediction_rows(12, prefix="b"))  # more than the 2 that fit
    assert writer.flush(5)
    writer.close()
    assert writer.written == 15 and len(_raw(tmp_path / "s.db", "predictions")) == 15

"""The audit chain against real PostgreSQL: tampering, concurrent writers, an outage."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests._support.services import private_postgres, shared_pg_available, temp_database
from trajops.logpipe import LogWriter
from trajops.logpipe.writer import WriterConfig
from trajops.security.audit import AUDIT_HOOKS, AuditRecord, append_audit, audit_rows, verify_chain
from trajops.store import Store
from trajops.store.models import AuditEntry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not shared_pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running"
    ),
]


def _records(n: int, *, tag: str = "w") -> list[AuditRecord]:
    return [
        AuditRecord(
            route="/v1/predict", method="POST", status=200, latency_ms=0.5 + i,
            key_id="0123456789ab", request_id=f"{tag}-{i}", details={"writer": tag},
        )
        for i in range(n)
    ]  # fmt: skip


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_update_and_delete_are_detected() -> None:
    with temp_database() as url:
        store = Store(url)
        append_audit(store, _records(10))
        assert verify_chain(store).ok
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET route = '/v1/feedback' WHERE id = 6"))
        bad = verify_chain(store)
        assert (bad.ok, bad.first_bad_id, bad.checked) == (False, 6, 5)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET route = '/v1/predict' WHERE id = 6"))
            conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
        gone = verify_chain(store)
        assert (gone.ok, gone.first_bad_id) == (False, 3)
        assert gone.reason == "row 3 missing (deleted) before row 4"
        store.dispose()


def test_two_writers_appending_concurrently_keep_one_valid_chain(tmp_path: Path) -> None:
    """Two API replicas (own engine, own writer) append at once; the advisory lock orders them."""
    with temp_database() as url:
        stores = [Store(url), Store(url, run_migrations=False)]
        config = WriterConfig(batch_size=7, flush_interval_s=0.01)
        writers = [
            LogWriter(s, tmp_path / f"spool{i}", config, hooks=AUDIT_HOOKS).start()
            for i, s in enumerate(stores)
        ]

        def produce(writer: LogWriter, tag: str) -> None:
            for chunk in range(40):
                writer.submit("audit_log", audit_rows(_records(5, tag=f"{tag}{chunk}")))
                time.sleep(0.003)

        threads = [
            threading.Thread(target=produce, args=(w, tag))
            for w, tag in zip(writers, "ab", strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in writers:
            w.close()
        assert all(w.spooled == 0 for w in writers)
        result = verify_chain(stores[0])
        assert (result.ok, result.checked, result.head_id) == (True, 400, 400)
        with stores[0].session() as s:
            order = [r[0] for r in s.execute(select(AuditEntry.request_id).order_by(AuditEntry.id))]
        switches = sum(a[0] != b[0] for a, b in itertools.pairwise(order))
        assert switches > 2, "the writers did not actually interleave"
        for s in stores:
            s.dispose()


@pytest.mark.slow
def test_audit_rows_written_during_an_outage_are_spooled_and_chained_later(tmp_path: Path) -> None:
    with private_postgres() as pg:
        store = Store(pg.url)
        writer = LogWriter(
            store, tmp_path / "spool", WriterConfig(flush_interval_s=0.05, retry_interval_s=0.3),
            hooks=AUDIT_HOOKS,
        ).start()  # fmt: skip
        writer.submit("audit_log", audit_rows(_records(30, tag="before")))
        _wait(lambda: writer.written >= 30)
        pg.stop()
        writer.submit("audit_log", audit_rows(_records(50, tag="during")))
        _wait(lambda: writer.spool_size() >= 50)
        pg.start()
        writer.submit("audit_log", audit_rows(_records(10, tag="after")))
        _wait(lambda: writer.spool_size() == 0 and writer.pending == 0, timeout=30)
        writer.close()
        store.engine.dispose()
        result = verify_chain(store)
        assert (result.ok, result.checked) == (True, 90)
        with store.session() as s:
            assert (
                s.execute(select(func.count(func.distinct(AuditEntry.record_id)))).scalar_one()
                == 90
            )
        store.dispose()

"""The operational store against real PostgreSQL: migrations, the log writer, spool and replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from tests._support.rows import prediction_rows
from tests._support.services import private_postgres, shared_pg_available, temp_database
from trajops.errors import ConflictError, NotFoundError
from trajops.logpipe import LogWriter
from trajops.logpipe.spool import spool_files
from trajops.logpipe.writer import WriterConfig
from trajops.monitoring.accuracy import online_performance, record_feedback
from trajops.security.anonymise import stored_coordinates
from trajops.store import PredictionRecord, Store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not shared_pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running"
    ),
]


def _count(store: Store) -> int:
    with store.session() as s:
        return int(s.execute(select(func.count(PredictionRecord.id))).scalar_one())


def test_migrations_create_every_table() -> None:
    with temp_database() as url:
        store = Store(url)
        with store.engine.connect() as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    text("select tablename from pg_tables where schemaname='public'")
                )
            }
        assert {"predictions", "feedback", "drift_reports", "alerts", "alembic_version"} <= tables
        Store(url)  # a second migration run is a no-op
        store.dispose()


def test_writer_feedback_and_performance(tmp_path: Path) -> None:
    with temp_database() as url:
        store = Store(url)
        writer = LogWriter(store, spool_dir=tmp_path / "spool").start()
        writer.submit("predictions", prediction_rows(300))
        writer.submit("predictions", prediction_rows(5))  # duplicates of existing keys are ignored
        writer.close()
        assert _count(store) == 300
        score = record_feedback(
            store,
            request_id="r7",
            agent_key="a7",
            positions=[[0.0, 8.0 + t + 0.3] for t in range(6)],
        )
        assert score.n_steps == 6
        assert score.ade == pytest.approx(0.3)
        assert score.fde == pytest.approx(0.3)
        with pytest.raises(ConflictError):
            record_feedback(store, request_id="r7", agent_key="a7", positions=[[0.0, 8.0]])
        with pytest.raises(NotFoundError):
            record_feedback(store, request_id="nope", agent_key="a7", positions=[[0.0, 8.0]])
        perf = online_performance(store, window=timedelta(hours=1))
        assert perf == [
            {
                "model_version": "1",
                "variant": "default",
                "n": 1,
                "ade": pytest.approx(0.3),
                "fde": pytest.approx(0.3),
                "miss_rate": 0.0,
            }
        ]
        assert (
            online_performance(
                store, window=timedelta(hours=1), now=datetime.now(UTC) + timedelta(hours=2)
            )
            == []
        )
        store.dispose()


def test_coordinates_are_stored_as_json_arrays(tmp_path: Path) -> None:
    """Logged coordinates reach a PostgreSQL JSON column as JSON arrays, not as a JSON string
    holding JSON (psycopg's JSON dumper calls the store's serializer)."""
    rows = prediction_rows(2)
    texts = stored_coordinates(np.array([[[1.25, -2.0]] * 8, [[3.0, 4.5]] * 8]), 3)
    for row, inputs in zip(rows, texts, strict=True):
        row["inputs"] = inputs
    with temp_database() as url:
        store = Store(url)
        LogWriter(store, tmp_path / "spool")._insert([("predictions", r) for r in rows])
        with store.session() as s:
            stored = s.execute(
                text("select json_typeof(inputs), inputs->0->>1 from predictions order by id")
            ).all()
            assert [tuple(r) for r in stored] == [("array", "-2.0"), ("array", "4.5")]
            first = s.scalars(select(PredictionRecord).order_by(PredictionRecord.id)).first()
            assert first is not None and first.inputs == [[1.25, -2.0]] * 8
        store.dispose()


def test_spool_and_replay_with_a_stopped_database(tmp_path: Path) -> None:
    """Records written while PostgreSQL is down are spooled and all land after it returns."""
    with private_postgres() as pg:
        store = Store(pg.url)
        spool = tmp_path / "spool"
        writer = LogWriter(
            store, spool, WriterConfig(flush_interval_s=0.1, retry_interval_s=0.3)
        ).start()
        writer.submit("predictions", prediction_rows(100, prefix="before"))
        _wait(lambda: writer.written >= 100)
        pg.stop()
        writer.submit("predictions", prediction_rows(250, prefix="during"))
        _wait(lambda: writer.spool_size() >= 250)
        assert not writer.healthy
        pg.start()
        writer.submit("predictions", prediction_rows(50, prefix="after"))
        _wait(lambda: writer.spool_size() == 0 and writer.pending == 0, timeout=30)
        writer.close()
        store.engine.dispose()
        assert _count(store) == 400
        assert spool_files(spool) == []  # replayed and removed (the folder's lock file stays)
        store.dispose()


def _wait(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")

"""The writer process behind the API (`PipeLogWriter` + `python -m trajops.monitoring.log_process`).

Real child processes on a real SQLite store: rows arrive, in order and once; a killed writer
process is replaced; a writer process that cannot start leaves the rows in the spool, which the
next writer process replays; an unreachable store makes the child spool and say so.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests._support.rows import prediction_rows
from trajops.store import PredictionRecord, Store
from trajops.store.pipe_writer import PipeLogWriter, writer_process_command, writer_process_env
from trajops.store.writer import WriterConfig, count_spooled, wait_until

CONFIG = WriterConfig(queue_size=1000, batch_size=50, flush_interval_s=0.05, retry_interval_s=0.1)


def _writer(url: str, spool: Path, command: list[str] | None = None) -> PipeLogWriter:
    return PipeLogWriter(
        command or writer_process_command(), url, spool, CONFIG, env=writer_process_env()
    )


def _request_ids(store: Store) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(PredictionRecord.request_id).order_by(PredictionRecord.id)))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_rows_reach_the_store_in_order_once(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path / "spool").start()
    try:
        for k in range(10):
            writer.submit("predictions", prediction_rows(30, prefix=f"b{k}-"))
        writer.submit("predictions", prediction_rows(5, prefix="b0-"))  # duplicates: ignored
        assert writer.flush(30), (writer.handled, writer.submitted)
        assert writer.pending == 0 and writer.healthy
    finally:
        writer.close()
    ids = _request_ids(store)
    assert ids == [f"b{k}-{i}" for k in range(10) for i in range(30)]
    assert writer.written == 305 and writer.spooled == 0 and writer.restarts == 0


def test_unknown_table_is_refused_in_the_api_process(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path / "spool")
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        writer.submit("nope", [{}])


def test_a_killed_writer_process_is_replaced(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path / "spool").start()
    try:
        writer.submit("predictions", prediction_rows(20, prefix="before-"))
        assert writer.flush(30)
        first = writer._proc
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        writer.submit("predictions", prediction_rows(20, prefix="after-"))
        assert writer.flush(30), (writer.handled, writer.submitted)
        assert writer.restarts == 1 and writer._proc is not first
    finally:
        writer.close()
    ids = set(_request_ids(store))
    assert {f"before-{i}" for i in range(20)} | {f"after-{i}" for i in range(20)} == ids
    assert writer.written == 40  # counters keep the replaced process's rows: they only grow


def test_rows_wait_in_the_spool_while_no_writer_process_can_run(
    store: Store, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    broken = _writer(store.url, spool, command=[str(tmp_path / "no-such-python")]).start()
    broken.submit("predictions", prediction_rows(25, prefix="s"))
    assert broken.flush(30)
    broken.close()
    assert (broken.spooled, broken.written, broken.healthy) == (25, 0, False)
    assert count_spooled(spool) == 25 and _request_ids(store) == []

    writer = _writer(store.url, spool).start()  # the next writer process replays the spool
    try:
        assert wait_until(lambda: len(_request_ids(store)) == 25, 30)
        assert wait_until(lambda: count_spooled(spool) == 0, 30)
    finally:
        writer.close()


def test_an_unreachable_store_is_spooled_and_reported(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    gone = tmp_path / "gone" / "ops.db"  # its folder does not exist: SQLite cannot open it
    writer = _writer(f"sqlite:///{gone}", spool).start()
    try:
        writer.submit("predictions", prediction_rows(10))
        assert writer.flush(30)
        assert wait_until(lambda: not writer.healthy, 10)
        assert writer.spooled == 10 and writer.written == 0
    finally:
        writer.close()
    assert count_spooled(spool) == 10


def test_a_stuck_writer_process_cannot_grow_the_api_memory(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    stuck = [sys.executable, "-c", "import time; time.sleep(60)"]  # never reads its input
    config = WriterConfig(queue_size=50, flush_interval_s=0.05)
    writer = PipeLogWriter(stuck, store.url, spool, config)
    writer.start()
    try:
        for k in range(3000):  # ~2 MB of rows: more than the pipe holds
            writer.submit("predictions", prediction_rows(1, prefix=f"x{k}-"))
        assert wait_until(lambda: count_spooled(spool) > 0, 10)
        assert writer._buffered <= 50  # the overflow went to the spool, not to memory
    finally:
        writer.close(timeout=1)  # kills the stuck process; its backlog is spooled, not resent
    assert writer.pending == 0 and writer._proc is not None and writer._proc.poll() is not None


def test_rows_are_handed_over_on_the_cadence_or_early_when_many_wait(
    store: Store, tmp_path: Path
) -> None:
    # A long cadence: rows wait for it, unless 5 % of the queue (here 50 rows) are waiting.
    config = WriterConfig(queue_size=1000, batch_size=50, handover_s=30.0, gather_s=0.0)
    writer = PipeLogWriter(
        writer_process_command(), store.url, tmp_path / "spool", config, env=writer_process_env()
    ).start()
    try:
        writer.submit("predictions", prediction_rows(1, prefix="first-"))
        assert wait_until(lambda: writer.pending == 0, 10)  # the first rows go at once
        writer.submit("predictions", prediction_rows(10, prefix="few-"))
        time.sleep(0.5)
        assert writer.pending == 10  # these wait for the cadence
        writer.submit("predictions", prediction_rows(40, prefix="more-"))
        assert wait_until(lambda: writer.pending == 0, 10)  # 50 waiting: handed over early
        assert wait_until(lambda: len(_request_ids(store)) == 51, 30)
        writer.submit("predictions", prediction_rows(3, prefix="last-"))
        started = time.monotonic()
    finally:
        writer.close()
    assert time.monotonic() - started < 15  # closing does not wait for the cadence
    assert len(_request_ids(store)) == 54 and writer.spooled == 0

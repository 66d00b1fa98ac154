"""The serving log: rows durable in the write-ahead log, then stored by a writer process.

Real child processes on a real SQLite store: rows arrive, in order and once; ``wait_durable``
returns only once the rows are in the log on disk; a killed writer process is replaced and
resumes at the checkpoint; an unreachable store makes the consumer spool and say so; the log
of a process that died with its writer is adopted and drained by another process's writer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from tests._support.rows import prediction_rows
from trajops.logpipe.durable import DurableLogWriter
from trajops.logpipe.lines import encode_rows
from trajops.logpipe.spool import count_spooled
from trajops.logpipe.wal import segments
from trajops.logpipe.writer import LogWriter, WriterConfig, wait_until
from trajops.store import PredictionRecord, Store

COLUMNS = ("agent_key", "inputs", "outputs")
CONFIG = WriterConfig(queue_size=1000, batch_size=50, flush_interval_s=0.05, retry_interval_s=0.1)


def _writer(url: str, home: Path, *, consumer: str = "process") -> DurableLogWriter:
    return DurableLogWriter(home / "wal", url, home / "spool", CONFIG, consumer=consumer)  # type: ignore[arg-type]


def _request_ids(store: Store) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(PredictionRecord.request_id).order_by(PredictionRecord.id)))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


@pytest.mark.parametrize("consumer", ["process", "thread"])
def test_rows_reach_the_store_in_order_once(store: Store, tmp_path: Path, consumer: str) -> None:
    writer = _writer(store.url, tmp_path, consumer=consumer).start()
    assert writer.wal is not None
    folder = writer.wal.dir
    try:
        for k in range(5):
            writer.submit("predictions", prediction_rows(30, prefix=f"b{k}-"))
        assert writer.flush(30), (writer.handled, writer.submitted)
        assert writer.written == 150 and writer.pending == 0
    finally:
        writer.close()
    assert _request_ids(store) == [f"b{k}-{i}" for k in range(5) for i in range(30)]
    assert not folder.exists()  # closed and drained: the log is removed


def test_unknown_table_is_refused_before_logging(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path).start()
    try:
        with pytest.raises(ValueError, match="unknown table 'nope'"):
            writer.submit("nope", [{}])
        assert writer.submitted == 0
    finally:
        writer.close()


def test_wait_durable_returns_once_the_rows_are_on_disk(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path).start()
    assert writer.wal is not None
    try:

        async def log_and_wait() -> bytes:
            writer.submit("predictions", prediction_rows(3, prefix="d"))
            await writer.wait_durable()
            return b"".join(path.read_bytes() for _, path in segments(writer.wal.dir))  # type: ignore[union-attr]

        on_disk = asyncio.run(log_and_wait())
        assert on_disk.count(b'"request_id":"d') == 3  # the segment is kept until a later one
    finally:
        writer.close()


def test_a_killed_writer_process_is_replaced_and_resumes(store: Store, tmp_path: Path) -> None:
    writer = _writer(store.url, tmp_path).start()
    try:
        writer.submit("predictions", prediction_rows(20, prefix="before-"))
        assert writer.flush(30)
        first = writer._proc
        assert first is not None
        writer.submit("predictions", prediction_rows(200, prefix="during-"))
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        writer.submit("predictions", prediction_rows(20, prefix="after-"))
        assert wait_until(lambda: writer.restarts == 1 and writer._proc is not first, 10)
        assert writer.flush(30), (writer.handled, writer.submitted)
    finally:
        writer.close()
    ids = _request_ids(store)
    expected = {
        f"{p}-{i}" for p, n in (("before", 20), ("during", 200), ("after", 20)) for i in range(n)
    }
    assert set(ids) == expected and len(ids) == len(expected)  # all of them, once


def test_an_unreachable_store_is_spooled_and_reported(tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "ops.db"  # its folder does not exist: SQLite cannot open it
    writer = _writer(f"sqlite:///{gone}", tmp_path).start()
    try:
        writer.submit("predictions", prediction_rows(10))
        assert writer.flush(30)
        assert wait_until(lambda: not writer.healthy, 10)
        assert writer.spooled == 10 and writer.written == 0
    finally:
        writer.close()
    assert count_spooled(tmp_path / "spool") == 10


_DYING_OWNER = """
import asyncio, os, sys
from pathlib import Path
from tests._support.rows import prediction_rows
from trajops.logpipe.wal import Wal
from trajops.logpipe.lines import encode_row

wal = Wal(Path(sys.argv[1]))
lines = [encode_row("predictions", r) for r in prediction_rows(40, prefix="orphan-")]
wal.append(b"".join(lines), len(lines))
assert wal.wait_sync(10)
os.write(os.open(wal.dir / "00000001.jsonl", os.O_WRONLY | os.O_APPEND), b'{"table": "predi')
os._exit(0)  # dies without closing its log: a torn last line, nobody to drain it
"""


def test_the_log_of_a_dead_process_is_adopted(store: Store, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_DYING_OWNER), str(tmp_path / "wal")],
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    writer = _writer(store.url, tmp_path).start()  # its writer process sweeps for orphans
    try:
        assert wait_until(lambda: len(_request_ids(store)) == 40, 30), _request_ids(store)
        assert wait_until(lambda: len(list((tmp_path / "wal").iterdir())) == 1, 10)
    finally:
        writer.close()
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(PredictionRecord)) == 40
    assert list((tmp_path / "wal").iterdir()) == []


@pytest.mark.parametrize("consumer", ["process", "thread"])
def test_the_rows_of_a_request_are_one_line_and_stored_row_by_row(
    store: Store, tmp_path: Path, consumer: str
) -> None:
    """A request's rows go into the log as one line with its arrays (``submit_columns``); the
    consumer stores one row per agent, the same values a row-by-row submit stores."""
    writer = _writer(store.url, tmp_path, consumer=consumer).start()
    assert writer.wal is not None
    common = {k: v for k, v in prediction_rows(1)[0].items() if k not in COLUMNS}
    inputs = np.arange(3 * 8 * 2, dtype=np.float64).reshape(3, 8, 2) / 8
    outputs = np.arange(3 * 12 * 2, dtype=np.float64).reshape(3, 12, 2) / 4
    try:
        for k in range(4):
            columns = {
                "agent_key": [f"k{k}-{i}" for i in range(3)],
                "inputs": inputs,
                "outputs": outputs + k,
            }
            writer.submit_columns("predictions", {**common, "request_id": f"c{k}"}, columns)
        with pytest.raises(ValueError, match="unequal"):
            writer.submit_columns("predictions", common, {"agent_key": ["a"], "inputs": inputs})
        lines = b"".join(path.read_bytes() for _, path in segments(writer.wal.dir))
        assert lines.count(b"\n") == 4 and writer.submitted == 12
        assert writer.flush(30), (writer.handled, writer.submitted)
    finally:
        writer.close()
    with store.session() as s:
        rows = s.scalars(select(PredictionRecord).order_by(PredictionRecord.id)).all()
    assert [(r.request_id, r.agent_key) for r in rows] == [
        (f"c{k}", f"k{k}-{i}") for k in range(4) for i in range(3)
    ]
    assert rows[4].inputs == inputs[1].tolist() and rows[4].outputs == (outputs[1] + 1).tolist()
    assert rows[0].created_at.replace(tzinfo=None) == common["created_at"].replace(tzinfo=None)


def test_a_columns_line_is_expanded_from_the_spool_too(tmp_path: Path) -> None:
    """A decoded line of a request's rows gives its rows with their datetimes; ragged columns
    are refused."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool")
    row = prediction_rows(1)[0]
    common = {k: v for k, v in row.items() if k not in COLUMNS}
    line = encode_rows("predictions", common, {"agent_key": ["a", "b"], "inputs": np.zeros((2, 8, 2)), "outputs": np.ones((2, 12, 2))})  # fmt: skip
    rows = writer.decode_rows(line)
    assert [r["agent_key"] for _, r in rows] == ["a", "b"]
    assert rows[1][1]["created_at"] == row["created_at"] and rows[1][1]["outputs"][0] == [1.0, 1.0]
    with pytest.raises(TypeError, match="2 rows"):
        writer.decode(line)
    ragged = encode_rows("predictions", common, {"agent_key": ["a", "b"], "inputs": [[0.0]]})
    with pytest.raises(ValueError, match="unequal"):
        writer.decode_rows(ragged)
    store.dispose()

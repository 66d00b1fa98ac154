"""The writer process's input side: blocks of lines from the pipe, decoding, queueing."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests._support.rows import prediction_rows
from trajops.logpipe.durable import line_blocks
from trajops.logpipe.lines import encode_row
from trajops.logpipe.writer import LogWriter, RowQueue, WriterConfig
from trajops.store import Store
from trajops.store.models import PredictionRecord


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_lines_split_across_reads_are_joined(pipe: tuple[int, int]) -> None:
    read, write = pipe
    blocks = line_blocks(read, 1 << 20)
    os.write(write, b'{"a":1}\n{"b"')
    assert next(blocks) == [b'{"a":1}']
    os.write(write, b":2}\n")
    assert next(blocks) == [b'{"b":2}']
    os.write(write, b'{"c":3}\n{"d":4}\n{"e":5}')  # a last line without its newline
    os.close(write)
    assert [line for block in blocks for line in block] == [b'{"c":3}', b'{"d":4}', b'{"e":5}']


def test_decode_restores_datetimes_and_reads_json_with_nan(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool")
    row = prediction_rows(1)[0]
    table, decoded = writer.decode(encode_row("predictions", row))
    assert table == "predictions" and decoded["created_at"] == row["created_at"]
    nan_row = {**row, "created_at": None, "latency_ms": float("nan")}
    nan_line = json.dumps({"table": "predictions", "row": nan_row})
    _, with_nan = writer.decode(nan_line)  # json.dumps writes NaN; orjson refuses it
    assert with_nan["latency_ms"] != with_nan["latency_ms"]
    with pytest.raises(KeyError):
        writer.decode(b'{"table": "nope", "row": {}}')
    store.dispose()


def test_put_rows_queues_in_order_and_refuses_unknown_tables(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool", WriterConfig(batch_size=7, queue_size=5))
    writer.start()  # a queue of 5: put_rows waits for the writer instead of spooling
    writer.put_rows(("predictions", row) for row in prediction_rows(30))
    with pytest.raises(ValueError, match="unknown table"):
        writer.put_rows([("nope", {})])
    writer.close()
    assert writer.written == writer.handled == writer.submitted == 30
    assert writer.spooled == 0
    with store.session() as s:
        ids = s.scalars(select(PredictionRecord.request_id).order_by(PredictionRecord.id)).all()
    assert ids == [f"r{i}" for i in range(30)]
    store.dispose()


def test_row_queue_moves_blocks_in_order_within_its_bound() -> None:
    q = RowQueue(4)
    rows = [("predictions", {"n": i}) for i in range(10)]
    assert list(q.offer(rows[:6])) == rows[4:6]  # what does not fit comes back, in order
    assert len(q) == 4 and q.take(3) == rows[:3]
    started = time.monotonic()
    assert q.take(5, timeout=0.05) == rows[3:4]  # no wait when rows are there
    assert q.take(5, timeout=0.05) == [] and time.monotonic() - started >= 0.05
    taken: list[tuple[str, dict[str, int]]] = []
    high = 0

    def consume() -> None:
        nonlocal high
        while len(taken) < len(rows):
            high = max(high, len(q))
            taken.extend(q.take(3, timeout=1.0))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    q.put(rows)  # 10 rows through a queue of 4: put waits for the consumer
    consumer.join(5)
    assert taken == rows and high <= 4
    with pytest.raises(ValueError, match="maxsize"):
        RowQueue(0)

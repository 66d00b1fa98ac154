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
from trajops.logpipe.rowqueue import RowQueue, request_chunks
from trajops.logpipe.writer import LogWriter, WriterConfig
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
    rows = [("predictions", row) for row in prediction_rows(30)]
    writer.put_rows(rows[i : i + 3] for i in range(0, 30, 3))
    with pytest.raises(ValueError, match="unknown table"):
        writer.put_rows([[("nope", {})]])
    writer.close()
    assert writer.written == writer.handled == writer.submitted == 30
    assert writer.spooled == 0
    with store.session() as s:
        ids = s.scalars(select(PredictionRecord.request_id).order_by(PredictionRecord.id)).all()
    assert ids == [f"r{i}" for i in range(30)]
    store.dispose()


def test_the_rows_of_a_submit_share_one_transaction(tmp_path: Path) -> None:
    """A request's rows are never split between two inserts, so a reader (the feedback route)
    sees all of a request's agents or none: batches of 7 rows, requests of 3 and of 10."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    inserts: list[list[str]] = []

    def record(_session: object, values: list[dict[str, object]]) -> list[dict[str, object]]:
        inserts.append([str(v["request_id"]) for v in values])
        return values

    config = WriterConfig(batch_size=7, queue_size=100)
    writer = LogWriter(store, tmp_path / "spool", config, hooks={"predictions": record})
    sizes = [3, 3, 10, 3, 1, 3, 3]
    for request, n in enumerate(sizes):
        rows = prediction_rows(n)
        writer.submit("predictions", [{**r, "request_id": f"q{request}"} for r in rows])
    writer.start()
    writer.close()
    assert writer.written == sum(sizes) and writer.spooled == 0
    owner = {}
    for i, ids in enumerate(inserts):
        assert len(ids) <= 7 or len(set(ids)) == 1  # only a lone large request goes over
        for request in ids:
            assert owner.setdefault(request, i) == i, f"{request} split between inserts"
    assert len(owner) == len(sizes)
    store.dispose()


def test_row_queue_moves_whole_groups_in_order_within_its_bound() -> None:
    q = RowQueue(4)
    rows = [("predictions", {"n": i}) for i in range(10)]
    assert q.offer(rows[:2]) and q.offer(rows[2:3])
    assert not q.offer(rows[3:5])  # a group that does not fit is refused whole
    assert q.offer(rows[3:4]) and len(q) == 4
    assert q.take(1) == rows[:2]  # the first group whole, though larger than asked
    assert q.take(1, first_whole=False) == rows[2:3]
    assert q.take(0, first_whole=False) == []  # nothing fits: nothing taken
    started = time.monotonic()
    assert q.take(5, timeout=0.05) == rows[3:4]  # no wait when rows are there
    assert q.take(5, timeout=0.05) == [] and time.monotonic() - started >= 0.05
    assert q.offer(rows[:6]) and len(q) == 6  # an empty queue takes a group of any size
    assert q.take(5) == rows[:6]
    taken: list[tuple[str, dict[str, int]]] = []
    high = 0

    def consume() -> None:
        nonlocal high
        while len(taken) < len(rows):
            high = max(high, len(q))
            taken.extend(q.take(3, timeout=1.0))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    q.put([rows[0:3], rows[3:4], rows[4:7], rows[7:10]])  # 10 rows, a queue of 4: put waits
    consumer.join(5)
    assert taken == rows and high <= 4
    with pytest.raises(ValueError, match="maxsize"):
        RowQueue(0)


def test_replay_chunks_never_split_a_requests_rows() -> None:
    """Spooled rows are replayed in chunks of about 1000; a request's consecutive rows stay in
    one chunk (one transaction), rows without a request split anywhere."""
    rows = [("predictions", {"request_id": f"q{i // 3}"}) for i in range(10)]  # q0..q3
    rows += [("audit_log", {"n": i}) for i in range(3)]
    chunks = list(request_chunks(rows, 4))
    assert [r for c in chunks for r in c] == rows
    assert [len(c) for c in chunks] == [6, 4, 3]  # q0 q1 | q2 q3 | audit rows, 4 at most
    assert [len(c) for c in request_chunks(rows[10:], 2)] == [2, 1]

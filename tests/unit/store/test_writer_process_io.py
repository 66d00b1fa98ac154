"""The writer process's input side: blocks of lines from the pipe, decoding, direct writes."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests._support.rows import prediction_rows
from trajops.monitoring.log_process import _LineReader
from trajops.store import Store
from trajops.store.models import PredictionRecord
from trajops.store.pipe_writer import encode_row
from trajops.store.writer import LogWriter, WriterConfig


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_lines_split_across_reads_are_joined(pipe: tuple[int, int]) -> None:
    read, write = pipe
    reader = _LineReader(read, timeout_s=0.05, linger_s=0.0, min_lines=1)
    blocks = reader.blocks()
    os.write(write, b'{"a":1}\n{"b"')
    assert next(blocks) == [b'{"a":1}']
    os.write(write, b":2}\n")
    assert next(blocks) == [b'{"b":2}']
    assert next(blocks) == []  # nothing within the timeout: an empty block
    os.write(write, b'{"c":3}')  # a last line without its newline
    os.close(write)
    assert [line for block in blocks for line in block] == [b'{"c":3}']


def test_a_block_lingers_for_more_lines_up_to_the_batch(pipe: tuple[int, int]) -> None:
    read, write = pipe
    reader = _LineReader(read, timeout_s=1.0, linger_s=0.5, min_lines=3)
    blocks = reader.blocks()

    def trickle() -> None:
        for i in range(4):
            os.write(write, f"{i}\n".encode())
            time.sleep(0.05)

    feeder = threading.Thread(target=trickle)
    feeder.start()
    first = next(blocks)
    feeder.join()
    assert first[:3] == [b"0", b"1", b"2"]  # gathered into one block, not one per write
    rest = [] if len(first) > 3 else next(blocks)
    assert first[3:] + rest == [b"3"]


def test_linger_ends_at_its_deadline(pipe: tuple[int, int]) -> None:
    read, write = pipe
    reader = _LineReader(read, timeout_s=1.0, linger_s=0.1, min_lines=1000)
    os.write(write, b"x\n")
    t0 = time.monotonic()
    assert next(reader.blocks()) == [b"x"]
    assert time.monotonic() - t0 < 0.5


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


def test_write_batch_inserts_on_the_calling_thread_in_batches(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    writer = LogWriter(store, tmp_path / "spool", WriterConfig(batch_size=7))
    rows = [("predictions", row) for row in prediction_rows(30)]
    writer.write_batch(rows)
    assert writer.written == writer.handled == writer.submitted == 30
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(PredictionRecord)) == 30
    store.dispose()

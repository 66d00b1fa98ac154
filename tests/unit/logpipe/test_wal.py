"""The write-ahead log: group-committed appends, segments, and what a reader may take."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests._support.rows import prediction_rows
from trajops.logpipe.lines import encode_row
from trajops.logpipe.tail import WalTailer
from trajops.logpipe.wal import CLOSED_FILE, Wal, owner_alive, segments
from trajops.logpipe.writer import LogWriter
from trajops.store import Store


def _lines(n: int, prefix: str) -> bytes:
    return b"".join(encode_row("predictions", r) for r in prediction_rows(n, prefix=prefix))


@pytest.mark.parametrize("fsync", [True, False])
def test_appends_become_durable_in_order_across_segments(tmp_path: Path, fsync: bool) -> None:
    wal = Wal(tmp_path, fsync=fsync, segment_bytes=2_000)
    try:

        async def append_and_wait() -> None:
            for k in range(20):
                upto = wal.append(_lines(3, f"s{k}-"), 3)
                await wal.wait(upto)
                assert wal.durable >= upto

        asyncio.run(append_and_wait())
        assert owner_alive(wal.dir)
    finally:
        wal.close()
    assert not owner_alive(wal.dir) and (wal.dir / CLOSED_FILE).exists()
    found = segments(wal.dir)
    assert len(found) > 5  # rotated past segment_bytes
    text = b"".join(path.read_bytes() for _, path in found)
    assert text.count(b"\n") == 60 and text.index(b'"s0-0"') < text.index(b'"s19-2"')


def test_a_reader_takes_complete_lines_only(tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal")
    wal.append(_lines(2, "a-"), 2)
    assert wal.wait_sync(10)
    (segment,) = [p for _, p in segments(wal.dir)]
    with segment.open("ab") as fh:
        fh.write(b'{"table": "predictions", "row": {"request')  # a torn last line
    store = Store(f"sqlite:///{tmp_path / 'ops.db'}")
    writer = LogWriter(store, tmp_path / "spool").start()
    try:
        tailer = WalTailer(wal.dir, writer)
        assert tailer.poll() == 2 and tailer.poll() == 0
        assert writer.flush(10)
        tailer.checkpoint()
        assert WalTailer(wal.dir, writer).rows_before == 2  # the next consumer starts after
    finally:
        writer.close()
        wal.close()


def test_closed_logs_refuse_appends(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    wal.close()
    wal.close()  # twice is fine
    with pytest.raises(OSError, match="closed"):
        wal.append(b"x\n", 1)
    assert os.stat(wal.dir).st_mode & 0o777 == 0o700

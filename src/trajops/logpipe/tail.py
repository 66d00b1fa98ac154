"""Consuming a write-ahead log folder: rows into the store, progress into the checkpoint.

:class:`WalTailer` reads what the folder's owner (:class:`~trajops.logpipe.wal.Wal`) has
written, hands complete lines to a :class:`~trajops.logpipe.writer.LogWriter` (batched,
group-committed inserts; the fsynced spool while the store is down) and moves the checkpoint
past rows only once the writer has inserted or spooled them. A consumer that dies is replaced
by one that starts at the checkpoint: rows after it are inserted again, which the tables'
natural keys make idempotent. One consumer per folder at a time (a ``flock`` on
``.consumer``); a folder whose owner and consumer are both gone is adopted by
:func:`drain_orphans`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from trajops.logpipe.wal import (
    CHECKPOINT_FILE,
    CLOSED_FILE,
    OWNER_FILE,
    owner_alive,
    segment_name,
    segments,
    try_lock,
)
from trajops.logpipe.writer import LogWriter

log = logging.getLogger(__name__)

CONSUMER_FILE = ".consumer"
_READ_BYTES = 1 << 20
_IDLE_S = (0.002, 0.05)
"""Poll interval of an idle consumer: it starts short after data and grows to the longer one."""


def read_progress(wal_dir: Path) -> tuple[int, int, int]:
    """``(segment, offset, rows)`` stored so far; zeros before the first checkpoint."""
    try:
        segment, offset, rows = (wal_dir / CHECKPOINT_FILE).read_text().split()
        return int(segment), int(offset), int(rows)
    except (OSError, ValueError):
        return 0, 0, 0


def _save_progress(wal_dir: Path, segment: int, offset: int, rows: int) -> None:
    tmp = wal_dir / f".{CHECKPOINT_FILE}.tmp"
    tmp.write_text(f"{segment} {offset} {rows}\n")
    os.replace(tmp, wal_dir / CHECKPOINT_FILE)  # an older one only means re-inserts


class WalTailer:
    """Feeds one folder's rows to ``writer`` and checkpoints what it has stored.

    Args:
        wal_dir: the folder (its ``.consumer`` lock must be held by the caller).
        writer: a started writer whose ``handled`` counts only this folder's rows.
    """

    def __init__(self, wal_dir: Path, writer: LogWriter) -> None:
        self.dir = wal_dir
        self.writer = writer
        segment, offset, rows = read_progress(wal_dir)
        if segment == 0:
            found = segments(wal_dir)
            segment, offset = (found[0][0] if found else 1), 0
        self._segment, self._offset = segment, offset
        self.rows_before = rows
        """Rows stored by earlier consumers (up to the checkpoint this one started from)."""
        self._queued = 0
        self._marks: deque[tuple[int, int, int]] = deque()  # (queued rows, segment, offset)
        self._saved = (segment, offset)

    @property
    def handled(self) -> int:
        """Rows of the folder inserted or spooled, over every consumer it had."""
        return self.rows_before + self.writer.handled

    def poll(self) -> int:
        """Queue the complete lines written since the last call; returns how many."""
        data = self._read()
        end = data.rfind(b"\n") + 1
        if end == 0:
            later = [n for n, _ in segments(self.dir) if n > self._segment]
            if later and not data:  # the owner moved on: this segment is final and read
                self._segment, self._offset = later[0], 0
                self._marks.append((self._queued, self._segment, 0))
            return 0
        groups = []  # a line's rows (one request's) go to the store in one transaction
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                groups.append(self.writer.decode_rows(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("write-ahead log %s: dropped an undecodable line: %r", self.dir, exc)
        self._offset += end
        self.writer.put_rows(groups)
        n = sum(map(len, groups))
        self._queued += n
        self._marks.append((self._queued, self._segment, self._offset))
        return n

    def _read(self) -> bytes:
        try:
            fd = os.open(self.dir / segment_name(self._segment), os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            return os.pread(fd, _READ_BYTES, self._offset)
        finally:
            os.close(fd)

    def checkpoint(self) -> None:
        """Record progress up to the rows the writer has stored; drop finished segments."""
        done = None
        while self._marks and self._marks[0][0] <= self.writer.handled:
            done = self._marks.popleft()
        if done is None or done[1:] == self._saved:
            return
        _, segment, offset = done
        _save_progress(self.dir, segment, offset, self.rows_before + done[0])
        self._saved = (segment, offset)
        for number, path in segments(self.dir):
            if number < segment:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def finished(self) -> bool:
        """The owner has let go, everything it wrote is read, and every row is stored."""
        if owner_alive(self.dir) and not (self.dir / CLOSED_FILE).exists():
            return False
        if self.poll():
            return False
        found = segments(self.dir)
        if found and self._segment < found[-1][0]:
            return False
        return self.writer.handled >= self._queued


def consume(
    tailer: WalTailer,
    *,
    sweep: Callable[[], LogWriter] | None = None,
    on_progress: Callable[[WalTailer], None] | None = None,
) -> None:
    """Tail ``tailer``'s folder until its owner has let go and every row is stored, then
    remove the folder; ``tailer``'s writer is closed after.

    Args:
        tailer: the folder's tailer (its ``.consumer`` lock held by the caller).
        sweep: makes writers for the orphaned logs beside the folder, drained meanwhile by an
            :class:`OrphanSweeper` (``None``: no sweeping).
        on_progress: called after every read of the folder.
    """
    sweeper = OrphanSweeper(tailer.dir.parent, sweep).start() if sweep is not None else None
    try:
        _tail(tailer, on_progress)
    finally:
        if sweeper is not None:
            sweeper.stop()
        tailer.writer.close()


def _tail(tailer: WalTailer, on_progress: Callable[[WalTailer], None] | None) -> None:
    idle = _IDLE_S[0]
    while True:
        queued = tailer.poll()
        tailer.checkpoint()
        if on_progress is not None:
            on_progress(tailer)
        if queued:
            idle = _IDLE_S[0]
            continue
        if tailer.finished():
            tailer.writer.flush(timeout=60.0)
            tailer.checkpoint()
            shutil.rmtree(tailer.dir, ignore_errors=True)
            return
        time.sleep(idle)
        idle = min(idle * 2, _IDLE_S[1])


def drain_orphans(wal_root: Path, make_writer: Callable[[], LogWriter]) -> int:
    """Adopt and drain every folder whose owner and consumer are both gone; returns how many.

    The folder's ``.consumer`` lock is held while it is drained, so two adopters never
    consume one folder.
    """
    drained = 0
    try:
        candidates = sorted(p for p in wal_root.iterdir() if p.is_dir())
    except OSError:  # no folder yet
        return 0
    for wal_dir in candidates:
        if owner_alive(wal_dir) and not (wal_dir / CLOSED_FILE).exists():
            continue
        lock = try_lock(wal_dir / CONSUMER_FILE)
        if lock is None:
            continue  # its own consumer (or another adopter) is on it
        try:
            if not (wal_dir / OWNER_FILE).exists():
                continue  # removed by its consumer meanwhile
            log.warning("draining the write-ahead log of a process that has gone: %s", wal_dir)
            consume(WalTailer(wal_dir, make_writer().start()))
            drained += 1
        finally:
            os.close(lock)
    return drained


class OrphanSweeper:
    """Drains orphaned folders in a background thread every ``interval_s`` seconds."""

    def __init__(
        self, wal_root: Path, make_writer: Callable[[], LogWriter], interval_s: float = 2.0
    ) -> None:
        self.wal_root = wal_root
        self.make_writer = make_writer
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trajops-wal-orphans", daemon=True)

    def start(self) -> OrphanSweeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                drain_orphans(self.wal_root, self.make_writer)
            except Exception:  # the sweeper must outlive any single failure
                log.exception("draining orphaned write-ahead logs failed")
            if self._stop.wait(self.interval_s):
                return

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

"""The write-ahead log of one API process: log rows on disk before their request is answered.

Each API process owns one folder under ``$TRAJOPS_HOME/wal`` (``<pid>-<id>``), holds an
exclusive ``flock`` on its ``.owner`` file while it lives, and appends rows there as JSON lines
in numbered segments: one row a line (``{"table", "row"}``, the spool's format), or the rows of
one request in one line, column by column (``{"table", "common", "columns"}``,
:func:`~trajops.logpipe.writer.encode_rows`: a prediction row per agent, encoded once). :meth:`Wal.append` writes
them at once (to the page cache: from then on a SIGKILL of any trajops process cannot lose
them); with ``fsync`` a flusher thread syncs what has been written with one ``fdatasync`` for
every append that came meanwhile (group commit) and then releases every request waiting in
:meth:`Wal.wait` (and then a crash of the machine cannot lose them either).

A consumer (:class:`~trajops.logpipe.tail.WalTailer`, in the writer process or a thread)
inserts the rows and records how far it got in the folder's checkpoint; segments behind the
checkpoint are deleted. A folder whose owner has gone (its lock is free) and whose consumer
is gone too is adopted and drained by another consumer
(:func:`~trajops.logpipe.tail.drain_orphans`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path

from trajops._ids import random_hex

log = logging.getLogger(__name__)

OWNER_FILE = ".owner"
CLOSED_FILE = ".closed"
CHECKPOINT_FILE = "checkpoint"
SEGMENT_BYTES = 16 << 20
"""A segment is closed and the next one started past this size."""


def segment_name(number: int) -> str:
    return f"{number:08d}.jsonl"


def segments(wal_dir: Path) -> list[tuple[int, Path]]:
    """The folder's segments, oldest first."""
    found = []
    for path in wal_dir.glob("*.jsonl"):
        with contextlib.suppress(ValueError):
            found.append((int(path.stem), path))
    return sorted(found)


def try_lock(path: Path) -> int | None:
    """A descriptor holding ``path``'s exclusive ``flock``, or None when another holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def owner_alive(wal_dir: Path) -> bool:
    """Whether the process that writes ``wal_dir`` still holds it."""
    fd = try_lock(wal_dir / OWNER_FILE)
    if fd is None:
        return True
    os.close(fd)
    return False


class Wal:
    """The appending side of one process's write-ahead log.

    :meth:`append` writes the rows at once, on the caller's thread (a write to the page cache:
    from then on a crash of this process cannot lose them). With ``fsync``, a flusher thread
    syncs what has been written with one ``fdatasync`` for every append that came meanwhile
    (group commit), and :meth:`wait` returns once the rows are synced (a crash of the machine
    cannot lose them either); without it, :meth:`wait` returns at once.

    Args:
        wal_root: ``$TRAJOPS_HOME/wal``; this process's folder is made inside it.
        fsync: sync to the disk before :meth:`wait` returns.
        segment_bytes: size past which the next segment starts.
    """

    def __init__(self, wal_root: Path, *, fsync: bool = True, segment_bytes: int = SEGMENT_BYTES):
        wal_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = wal_root / f"{os.getpid()}-{random_hex()[:12]}"
        self.dir.mkdir(mode=0o700)
        owner = try_lock(self.dir / OWNER_FILE)
        if owner is None:  # pragma: no cover - a fresh folder nobody else knows
            raise OSError(f"cannot lock {self.dir}")
        self._owner = owner
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._number = 1
        self._fd = self._open_segment(self._number)
        self._retired: list[int] = []  # segments rotated away, to sync and close (fsync mode)
        self._size = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.appended = 0
        """Rows written to the log (to the page cache)."""
        self.durable = 0
        """Rows of those synced to the disk (all of them without ``fsync``)."""
        self.failed: BaseException | None = None
        """The last write's error, until a write succeeds again."""
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._flusher: threading.Thread | None = None
        if fsync:
            self._flusher = threading.Thread(
                target=self._sync_loop, name="trajops-wal", daemon=True
            )
            self._flusher.start()

    def _open_segment(self, number: int) -> int:
        fd = os.open(self.dir / segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync:  # the new name itself must survive a crash
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return fd

    # --- producer side ------------------------------------------------------------------
    def append(self, data: bytes, rows: int) -> int:
        """Write ``rows`` encoded lines; returns the count to :meth:`wait` for. A write that
        fails is recorded in :attr:`failed` (and raised by :meth:`wait`), not raised here."""
        with self._lock:
            if self._closing:
                raise OSError("the write-ahead log is closed")
            try:
                self._write(data)
            except OSError as exc:
                log.error("write-ahead log %s failed: %s", self.dir, exc)
                self.failed = exc
                self._release(self.durable, exc)
                return self.appended
            self.appended += rows
            self.failed = None  # the disk took a write again
            if self.fsync:
                self._cond.notify()
            else:
                self.durable = self.appended
            return self.appended

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)
        if self._size >= self.segment_bytes:
            old, self._number = self._fd, self._number + 1
            self._fd = self._open_segment(self._number)
            self._size = 0
            if self.fsync:
                self._retired.append(old)  # the flusher syncs it before closing it
            else:
                os.close(old)

    async def wait(self, upto: int | None = None) -> None:
        """Return once the first ``upto`` rows (default: all appended so far) are durable.

        Raises:
            OSError: the log cannot be written or synced (disk full, I/O error).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            target = self.appended if upto is None else upto
            if self.failed is not None:
                raise OSError(f"the write-ahead log failed: {self.failed}")
            if self.durable >= target:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((target, loop, future))
        await future

    def wait_sync(self, timeout: float = 10.0) -> bool:
        """Block until everything appended so far is durable; False on timeout or failure."""
        with self._cond:
            target = self.appended
            return self._cond.wait_for(
                lambda: self.durable >= target or self.failed is not None, timeout
            ) and (self.failed is None)

    # --- the flusher thread (fsync mode) ---------------------------------------------------
    def _sync_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self.appended > self.durable or self._closing)
                if self.appended <= self.durable and not self._retired:
                    return  # closing, and everything is synced
                target, fd = self.appended, self._fd
                retired, self._retired = self._retired, []
            try:
                for old in retired:
                    os.fdatasync(old)
                    os.close(old)
                os.fdatasync(fd)
            except OSError as exc:
                log.error("write-ahead log %s: sync failed: %s", self.dir, exc)
                with self._cond:
                    self.failed = exc
                    self._release(self.durable, exc)
                continue
            with self._cond:
                self.durable = max(self.durable, target)
                self._release(target, None)

    def _release(self, target: int, error: BaseException | None) -> None:
        """Wake the waiters covered by ``target`` (called with the lock held)."""
        self._cond.notify_all()
        keep = []
        for upto, loop, future in self._waiters:
            if upto <= target or error is not None:
                loop.call_soon_threadsafe(_settle, future, error)
            else:
                keep.append((upto, loop, future))
        self._waiters = keep

    # --- lifecycle ----------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Sync what is written, mark the folder closed (its consumer drains and removes it)
        and let go of it. Closing twice does nothing."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join(timeout)
        for fd in (*self._retired, self._fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        (self.dir / CLOSED_FILE).touch()
        os.close(self._owner)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(OSError(f"the write-ahead log failed: {error}"))

"""The write-ahead log of one API process: log rows on disk before their request is answered.

Each API process owns one folder under ``$TRAJOPS_HOME/wal`` (``<pid>-<id>``), holds an
exclusive ``flock`` on its ``.owner`` file while it lives, and appends rows there as JSON lines
(``{"table", "row"}``, the spool's format) in numbered segments. :meth:`Wal.append` only
buffers; a flusher thread writes whatever has gathered with one ``write`` and one
``fdatasync`` (group commit) and then releases every request waiting in :meth:`Wal.wait`.
A request is answered after its rows are written and synced: once :meth:`Wal.wait` returns, a
SIGKILL of any trajops process cannot lose them (and, with ``fsync``, neither can a crash of
the machine).

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

    Args:
        wal_root: ``$TRAJOPS_HOME/wal``; this process's folder is made inside it.
        fsync: ``fdatasync`` after each group write (survives a machine crash); without it a
            written row survives any process crash, not a power loss.
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
        self._size = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._buf: list[bytes] = []
        self.appended = 0
        """Rows appended (buffered or written)."""
        self.durable = 0
        """Rows of those written (and synced)."""
        self.failed: BaseException | None = None
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._flusher = threading.Thread(target=self._flush_loop, name="trajops-wal", daemon=True)
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
        """Buffer ``rows`` encoded lines; returns the count to :meth:`wait` for."""
        with self._lock:
            if self._closing:
                raise OSError("the write-ahead log is closed")
            self._buf.append(data)
            self.appended += rows
            self._cond.notify()
            return self.appended

    async def wait(self, upto: int | None = None) -> None:
        """Return once the first ``upto`` rows (default: all appended so far) are on disk.

        Raises:
            OSError: the log cannot be written (disk full, I/O error).
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
        """Block until everything appended so far is on disk; False on timeout."""
        with self._cond:
            target = self.appended
            return self._cond.wait_for(
                lambda: self.durable >= target or self.failed is not None, timeout
            ) and (self.failed is None)

    # --- the flusher thread -------------------------------------------------------------
    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._buf) or self._closing)
                if not self._buf:
                    return
                chunk, self._buf = self._buf, []
                target = self.appended
            try:
                self._write(b"".join(chunk))
            except OSError as exc:
                log.error("write-ahead log %s failed: %s", self.dir, exc)
                with self._cond:
                    self.failed = exc
                    self._release(target, exc)
                continue
            with self._cond:
                self.durable, self.failed = target, None  # the disk took a write again
                self._release(target, None)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fdatasync(self._fd)
        self._size += len(data)
        if self._size >= self.segment_bytes:
            old, self._number = self._fd, self._number + 1
            self._fd = self._open_segment(self._number)
            self._size = 0
            os.close(old)

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
        """Write what is buffered, mark the folder closed (its consumer drains and removes
        it) and let go of it. Closing twice does nothing."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._flusher.join(timeout)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        (self.dir / CLOSED_FILE).touch()
        os.close(self._owner)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(OSError(f"the write-ahead log failed: {error}"))

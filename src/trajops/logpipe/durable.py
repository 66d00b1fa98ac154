"""The log sink of a serving process: rows are durable before their request is answered.

:class:`DurableLogWriter` appends every row to this process's write-ahead log
(:class:`~trajops.logpipe.wal.Wal`: written at once, so a crash of this process cannot lose
them), and :meth:`~DurableLogWriter.wait_durable` returns once they are also synced, with
``fsync`` (group commit: one ``fdatasync`` covers every request that waited meanwhile). The serving middleware awaits it before a 2xx leaves. A consumer inserts the rows
into the store off the request path: by default a writer process (``python -m
trajops.logpipe.process``, its own interpreter lock), or a thread of this process. A consumer
that dies is restarted at the log's checkpoint; rows of a process that died are adopted by the
next consumer that sweeps the folder (:func:`~trajops.logpipe.tail.drain_orphans`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from trajops.logpipe.lines import Columns, column_rows, encode_row, encode_rows
from trajops.logpipe.spool import count_spooled
from trajops.logpipe.tail import CONSUMER_FILE, WalTailer, consume
from trajops.logpipe.wal import Wal, try_lock
from trajops.logpipe.writer import LogWriter, WriterConfig, wait_until
from trajops.store.models import Base

log = logging.getLogger(__name__)

_STATUS_BYTES = 1 << 16


def line_blocks(fd: int, size: int) -> Iterator[list[bytes]]:
    """Complete lines from a pipe, one list per ``os.read`` of up to ``size`` bytes (whatever
    had arrived), until end of input; a last line without its newline is included. (Iterating
    a raw pipe object reads one byte per system call instead.)"""
    pending = b""
    while chunk := os.read(fd, size):
        *lines, pending = (pending + chunk).split(b"\n")
        if lines:
            yield lines
    if pending:
        yield [pending]


class DurableLogWriter:
    """Write-ahead log in this process; inserts by a writer process or a thread.

    Args:
        wal_root: folder of the write-ahead logs (``$TRAJOPS_HOME/wal``).
        database_url: the store the consumer inserts into.
        spool_dir: where the consumer spools rows while the store is down.
        config: batching of the consumer's :class:`LogWriter`.
        consumer: ``process`` (a writer process) or ``thread``.
        fsync: sync each group write to the disk (see :class:`~trajops.logpipe.wal.Wal`).
        hooks: the consumer's insert hooks (the audit chain); thread consumers only, a writer
            process installs its own.
    """

    def __init__(
        self,
        wal_root: Path,
        database_url: str,
        spool_dir: Path,
        config: WriterConfig | None = None,
        *,
        consumer: Literal["process", "thread"] = "process",
        fsync: bool = True,
        hooks: dict[str, Any] | None = None,
    ) -> None:
        self.wal_root = wal_root
        self.database_url = database_url
        self.spool_dir = spool_dir
        self.config = config or WriterConfig()
        self.consumer = consumer
        self.fsync = fsync
        self.hooks = hooks or {}
        self.wal: Wal | None = None
        self.submitted = 0
        self.written = 0
        self.spooled = 0
        self.healthy = True
        self.restarts = 0
        self._handled = 0
        self._written_before = self._spooled_before = 0
        self._closing = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    # --- producer side (the event loop) ---------------------------------------------------
    def submit(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows for ``table`` to the write-ahead log; returns at once."""
        _check_table(table)
        lines = [encode_row(table, row) for row in rows]
        self._append(b"".join(lines), len(lines))

    def submit_columns(self, table: str, common: dict[str, Any], columns: Columns) -> None:
        """Append rows that share ``common`` values as one line (:func:`encode_rows`): the
        rows of a request are encoded once, with their arrays, and expanded by the consumer."""
        _check_table(table)
        n = column_rows(columns)  # ragged columns raise before anything is encoded
        self._append(encode_rows(table, common, columns), n)

    def _append(self, data: bytes, rows: int) -> None:
        if not rows:
            return
        assert self.wal is not None, "start() the writer first"
        before = self.wal.appended
        self.wal.append(data, rows)  # a failed write: wait_durable raises
        self.submitted += self.wal.appended - before

    async def wait_durable(self) -> None:
        """Return once every row submitted so far is on disk (raises ``OSError`` if the log
        cannot be written)."""
        assert self.wal is not None, "start() the writer first"
        await self.wal.wait()

    @property
    def handled(self) -> int:
        """Rows inserted into the store or spooled, by every consumer of this log."""
        return self._handled

    @property
    def pending(self) -> int:
        """Rows logged but not yet in the store (or the spool)."""
        return max(0, self.submitted - self._handled)

    def spool_size(self) -> int:
        """Rows waiting in the spool files for the database to come back."""
        return count_spooled(self.spool_dir)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted so far is inserted or spooled; False on timeout."""
        return wait_until(lambda: self._handled >= self.submitted, timeout)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> DurableLogWriter:
        self.wal = Wal(self.wal_root, fsync=self.fsync)
        if self.consumer == "thread":
            self._thread = threading.Thread(
                target=self._consume_here, name="trajops-log-consumer", daemon=True
            )
            self._thread.start()
        else:
            self._spawn()
            threading.Thread(target=self._supervise, name="trajops-log-super", daemon=True).start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Sync what is logged, then let the consumer store it all and remove the log (once)."""
        if self._closing:
            return
        self._closing = True
        if self.wal is not None:
            self.wal.close(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        proc = self._proc
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                log.error("log writer process did not finish in %.0f s; killing it", timeout)
                proc.kill()  # its rows stay in the write-ahead log for the next consumer
                proc.wait()

    # --- a consumer thread ------------------------------------------------------------------
    def _consume_here(self) -> None:
        from trajops.store.db import Store

        assert self.wal is not None
        lock = try_lock(self.wal.dir / CONSUMER_FILE)
        store = Store(self.database_url, run_migrations=False)

        def make_writer() -> LogWriter:
            return LogWriter(store, self.spool_dir, self.config, hooks=self.hooks)

        tailer = WalTailer(self.wal.dir, make_writer().start())
        try:
            consume(tailer, sweep=make_writer, on_progress=self._progress)
        finally:
            self._progress(tailer)  # the last rows, stored as the writer closed
            store.dispose()
            if lock is not None:
                os.close(lock)

    def _progress(self, tailer: WalTailer) -> None:
        writer = tailer.writer
        self._handled = max(self._handled, tailer.handled)
        self.written, self.spooled, self.healthy = writer.written, writer.spooled, writer.healthy

    # --- a writer process -------------------------------------------------------------------
    def _spawn(self) -> None:
        assert self.wal is not None
        self._written_before, self._spooled_before = self.written, self.spooled
        proc = subprocess.Popen(
            [sys.executable, "-m", "trajops.logpipe.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=writer_process_env(),
        )
        assert proc.stdin is not None and proc.stdout is not None
        config = {
            "database_url": self.database_url,
            "spool_dir": str(self.spool_dir),
            "wal_dir": str(self.wal.dir),
            "writer": asdict(self.config),
        }
        proc.stdin.write(orjson.dumps(config, option=orjson.OPT_APPEND_NEWLINE))
        self._proc = proc
        threading.Thread(
            target=self._read_status, args=(proc.stdout,), name="trajops-log-status", daemon=True
        ).start()

    def _supervise(self) -> None:
        """Restart the writer process when it dies before the log is closed."""
        while True:
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._closing or proc is not self._proc:
                return
            log.error("log writer process exited with %s; restarting it", code)
            self.restarts += 1
            self.healthy = False
            try:
                self._spawn()
            except OSError as exc:  # rows stay in the write-ahead log meanwhile
                log.error("cannot start the log writer process: %s", exc)
                return

    def _read_status(self, stdout: IO[bytes]) -> None:
        """Status lines of the writer process: rows stored, written and spooled, health."""
        for block in line_blocks(stdout.fileno(), _STATUS_BYTES):
            try:
                status = orjson.loads(block[-1])  # counters only grow: the last line says all
            except orjson.JSONDecodeError:
                continue
            self._handled = max(self._handled, int(status.get("handled", 0)))
            self.written = self._written_before + int(status.get("written", 0))
            self.spooled = self._spooled_before + int(status.get("spooled", 0))
            self.healthy = bool(status.get("healthy", self.healthy))


def _check_table(table: str) -> None:
    if table not in Base.metadata.tables:
        raise ValueError(f"unknown table {table!r}")


def writer_process_env() -> dict[str, str]:
    """The writer process's environment: this one, unbuffered (status lines arrive at once)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env

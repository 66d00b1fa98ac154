"""The log writer of the API process: rows go down a pipe to a writer process.

An in-process :class:`~trajops.store.writer.LogWriter` shares the interpreter lock with the
event loop: its thread spends most of its time in the database driver, which releases and
re-takes the lock around every row, and each re-take waits behind the busy loop. Under load the
writer fell behind at ~6k rows/s and became the service's ceiling (docs/performance.md).

:class:`PipeLogWriter` keeps only the cheap part in the API process: each row is encoded once
(orjson, one JSON line in the spool's own format) and appended to a buffer; a small thread
hands the buffer to the writer process's stdin every few milliseconds with one ``write``. The
writer process (``python -m trajops.monitoring.log_process``) runs an ordinary ``LogWriter``
(batches, hooks such as the audit hash chain, the fsynced spool and its replay) on its own
interpreter lock.

Guarantees: rows are written or spooled in order; when the pipe is full (the database is slow)
``pending`` grows and the API's back-pressure slows requests down, and past ``queue_size``
rows go to the spool instead of memory. If the writer process dies it is restarted and the
block being handed over is sent again; while it cannot be started (or after ``close``), rows
are appended to the spool by this process, to be replayed by the next writer process. Rows
already in the pipe or in a dying writer process's memory are lost (up to the 1 MiB pipe and
one batch), as rows in a killed API process's memory would be with an in-process writer.
Several processes (workers, replicas on one volume) share one spool folder; appends and replays
lock it across processes (:mod:`trajops.store.writer`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from trajops.store.models import Base
from trajops.store.writer import WriterConfig, append_spool, count_spooled, wait_until

log = logging.getLogger(__name__)

_PIPE_BYTES = 1 << 20  # ask the kernel for a 1 MiB pipe (Linux; the default is 64 KiB)
_F_SETPIPE_SZ = 1031
_STATUS_BYTES = 1 << 16


def line_blocks(fd: int, size: int) -> Iterator[list[bytes]]:
    """Complete lines from a pipe, one list per ``os.read`` of up to ``size`` bytes (whatever
    had arrived), until end of input; a last line without its newline is included.

    Both ends of the writer pipe read this way. Iterating a raw (unbuffered) pipe object
    instead reads one byte per system call, and each of those calls gives up and takes back
    the interpreter lock: the status reader did that ~700 times a second, every time waiting
    for the busy event loop to let go of the lock.
    """
    pending = b""
    while chunk := os.read(fd, size):
        *lines, pending = (pending + chunk).split(b"\n")
        if lines:
            yield lines
    if pending:
        yield [pending]


def encode_row(table: str, row: dict[str, Any]) -> bytes:
    """One row as a spool line: ``{"table": ..., "row": ...}\\n``."""
    return orjson.dumps(
        {"table": table, "row": row}, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    )


class PipeLogWriter:
    """Feeds a writer process over a pipe; same interface as :class:`LogWriter`.

    Args:
        command: argv of the writer process (reads a JSON config line, then spool lines on
            stdin; prints JSON status lines on stdout).
        database_url: the store the writer process inserts into.
        spool_dir: where the writer process spools; this process appends there only while the
            writer process cannot run (or falls behind).
        config: batching and timing of the writer process's ``LogWriter``; its queue size is
            also this process's buffer bound.
        env: environment of the writer process.
    """

    def __init__(
        self,
        command: list[str],
        database_url: str,
        spool_dir: Path,
        config: WriterConfig | None = None,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = command
        self.spool_dir = spool_dir
        self.config = config or WriterConfig()
        self.process_config = {  # the first line the writer process reads
            "database_url": database_url,
            "spool_dir": str(spool_dir),
            "writer": asdict(self.config),
        }
        self.env = env
        self.written = 0
        self.spooled = 0
        self.healthy = True
        self.restarts = 0
        self.submitted = 0
        self._child_handled = 0  # rows the current writer process inserted or spooled
        self._handled_before = 0  # the same, of writer processes that have exited
        self._child_written = 0
        self._written_before = 0  # rows inserted by writer processes that have exited
        self._spooled_before = 0  # rows spooled by writer processes that have exited
        self._buf: list[bytes] = []
        self._buffered = 0  # rows in _buf
        # Hand over before the cadence when this many rows wait: half the API's back-pressure
        # threshold (serving.audit.LogBackpressure, 10 % of the queue), so a fast API process
        # never waits on rows that are only waiting for the sender's timer.
        self._early = max(1, self.config.queue_size // 20)
        self._sending = 0  # rows being handed to the pipe right now
        # A plain lock under the condition: ``submit`` (on the event loop, twice a request)
        # takes it with the lock's own C-level context manager, not the condition's Python one.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closing = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._sender: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._local_spooled = 0
        self._child_spooled = 0
        self._spool_lock = threading.Lock()

    # --- producer side (any thread, never blocks) -------------------------------------
    def submit(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Queue rows for ``table``; returns at once."""
        if table not in Base.metadata.tables:
            raise ValueError(f"unknown table {table!r}")
        lines = [encode_row(table, row) for row in rows]
        if not lines:
            return
        if self._buffered >= self.config.queue_size:
            # The writer process is not keeping up (after the API's back-pressure wait): keep
            # memory bounded and the rows safe in the spool, which the writer process replays.
            self._spool_here(b"".join(lines), len(lines))
            with self._lock:
                self.submitted += len(lines)
            return
        with self._lock:
            was_empty = not self._buf
            self._buf.extend(lines)
            self._buffered += len(lines)
            self.submitted += len(lines)
            if was_empty or self._early <= self._buffered < self._early + len(lines):
                self._cond.notify()  # the first rows, or enough rows to hand over early

    @property
    def pending(self) -> int:
        """Rows not yet handed to the writer process."""
        return self._buffered + self._sending

    def spool_size(self) -> int:
        """Rows waiting in the spool files for the database to come back."""
        return count_spooled(self.spool_dir)

    @property
    def handled(self) -> int:
        """Rows inserted or spooled so far (by writer processes or, as a last resort, here)."""
        return self._handled_before + self._child_handled + self._local_spooled

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted so far is inserted or spooled; False on timeout."""
        return wait_until(lambda: self.handled >= self.submitted, timeout)

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> PipeLogWriter:
        try:
            self._spawn()
        except OSError as exc:  # the sender retries, and spools here while it cannot start
            log.error("cannot start the log writer process: %s", exc)
            self.healthy = False
        self._sender = threading.Thread(
            target=self._send_loop, name="trajops-log-pipe", daemon=True
        )
        self._sender.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Hand over everything buffered, then let the writer process drain and exit."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._sender is not None:
            self._sender.join(timeout)
        with self._cond:  # the sender is stuck (a hung writer process): keep its backlog
            leftover, self._buf = self._buf, []
            rows, self._buffered = self._buffered, 0
        if leftover:
            self._spool_here(b"".join(leftover), rows)
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the writer process writes (or spools) what it holds
            proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            log.error("log writer process did not finish in %.0f s; killing it", timeout)
            proc.kill()
            proc.wait()
        if self._sender is not None:  # a write that was blocked has failed now: it spools
            self._sender.join(5)
        if self._reader is not None:
            self._reader.join(5)
        if proc.returncode != 0:
            log.error("log writer process exited with %s", proc.returncode)

    # --- the writer process -------------------------------------------------------------
    def _spawn(self) -> None:
        self._handled_before += self._child_handled
        self._written_before += self._child_written
        self._spooled_before += self._child_spooled
        self._child_handled = self._child_written = self._child_spooled = 0
        proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            bufsize=0,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            import fcntl

            fcntl.fcntl(proc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:  # not Linux, or above /proc/sys/fs/pipe-max-size: keep the default
            pass
        proc.stdin.write(orjson.dumps(self.process_config, option=orjson.OPT_APPEND_NEWLINE))
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_status, args=(proc.stdout,), name="trajops-log-status", daemon=True
        )
        self._reader.start()

    def _read_status(self, stdout: IO[bytes]) -> None:
        """Status lines of the writer process: rows written and spooled, store health."""
        for block in line_blocks(stdout.fileno(), _STATUS_BYTES):
            try:
                status = orjson.loads(block[-1])  # counters only grow: the last line says all
            except orjson.JSONDecodeError:
                continue
            if self._reader is not threading.current_thread():
                return  # a replaced writer process: its late lines must not count again
            self._child_handled = int(status.get("handled", self._child_handled))
            self._child_written = int(status.get("written", self._child_written))
            self._child_spooled = int(status.get("spooled", self._child_spooled))
            # Counters only grow: earlier writer processes' counts stay in the totals.
            self.written = self._written_before + self._child_written
            self.spooled = self._spooled_before + self._child_spooled + self._local_spooled
            self.healthy = bool(status.get("healthy", self.healthy))

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._buf and not self._closing:
                    self._cond.wait()
                if not self._buf:
                    return
                chunk, self._buf = self._buf, []
                self._sending, self._buffered = self._buffered, 0
            self._send(b"".join(chunk), len(chunk))
            with self._cond:
                self._sending = 0
                # Let rows gather: one hand-over per ``handover_s``, not one per request (each
                # wakes the writer process); sooner when many rows wait, at once when closing.
                self._cond.wait_for(
                    lambda: self._closing or self._buffered >= self._early,
                    self.config.handover_s,
                )

    def _send(self, data: bytes, rows: int) -> None:
        if self._closing and (self._proc is None or self._proc.poll() is not None):
            self._spool_here(data, rows)  # shutting down: no new writer process
            return
        for attempt in range(3):
            proc = self._proc
            # No poll() first: a writer process that has exited closed its end of the pipe,
            # so the write itself fails (and a wait4 per hand-over is one more round trip of
            # the interpreter lock against the event loop).
            if proc is not None and proc.stdin is not None:
                try:
                    _write_all(proc.stdin, data)
                    return
                except (BrokenPipeError, OSError, ValueError):
                    pass
            if self._closing:  # shut down while this write was blocked: no new process
                break
            log.error("log writer process is gone (exit %s); restarting it", _exit(proc))
            self.restarts += 1
            try:
                self._spawn()
            except OSError as exc:
                log.error("cannot start the log writer process: %s", exc)
                time.sleep(0.1 * (attempt + 1))
        # The writer process cannot run: keep the rows in the spool for the next one.
        self._spool_here(data, rows)
        self.healthy = False

    def _spool_here(self, data: bytes, rows: int) -> None:
        with self._spool_lock:  # the event loop (overflow) and the sender may both spool
            append_spool(self.spool_dir, data)
            self._local_spooled += rows
        self.spooled = self._spooled_before + self._child_spooled + self._local_spooled


def _write_all(pipe: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = pipe.write(view)
        if n is None:  # pragma: no cover - only on non-blocking pipes, which this is not
            continue
        view = view[n:]


def _exit(proc: subprocess.Popen[bytes] | None) -> int | None:
    return None if proc is None else proc.poll()


def writer_process_command() -> list[str]:
    """argv of the writer process run by this interpreter."""
    return [sys.executable, "-m", "trajops.monitoring.log_process"]


def writer_process_env() -> dict[str, str]:
    """The writer process's environment: this one, unbuffered (status lines arrive at once).

    The child imports ``trajops`` like the API process does (installed, or on ``PYTHONPATH``)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env

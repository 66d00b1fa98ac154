"""The writer process behind :class:`~trajops.store.pipe_writer.PipeLogWriter`.

Run as ``python -m trajops.monitoring.log_process`` by the API process, one per API worker.
stdin: one JSON config line (database URL, spool folder, batching), then rows as spool lines
(``{"table", "row"}``). stdout: JSON status lines (rows written and spooled, store health)
every 0.1 s and once at exit. On end of input (the API closed the pipe or died) it
writes or spools everything it holds and exits 0. SIGINT and SIGTERM are ignored: the API
process decides when logging ends, so a signal sent to the whole process group (Ctrl-C, a
service manager) cannot cut the log short.
"""

from __future__ import annotations

import gc
import itertools
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from trajops.security.audit import AUDIT_HOOKS
from trajops.store.db import Store
from trajops.store.writer import LogWriter, WriterConfig

_STATUS_INTERVAL_S = 0.1
_READ_BYTES = 1 << 20
_LINGER_S = 0.05
"""How long the first row of a block waits for more before they are inserted together."""


def _status(writer: LogWriter, out: IO[bytes]) -> None:
    out.write(
        orjson.dumps(
            {
                "written": writer.written,
                "spooled": writer.spooled,
                "handled": writer.handled,
                "healthy": writer.healthy,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
    )
    out.flush()


def _report(writer: LogWriter, out: IO[bytes], stop: threading.Event) -> None:
    while not stop.wait(_STATUS_INTERVAL_S):
        _status(writer, out)


class _LineReader:
    """Complete lines from a pipe, gathered into blocks.

    A block is what arrived within ``linger_s`` of its first line, up to ``min_lines`` lines
    (more when one read brings more): under load one insert and one commit take a batch's worth
    of rows instead of a few, which is most of the writer process's work (every commit rewrites
    the tables' and indexes' last pages and syncs the WAL).
    """

    def __init__(self, fd: int, *, timeout_s: float, linger_s: float, min_lines: int) -> None:
        self.fd = fd
        self.timeout_s = timeout_s
        self.linger_s = linger_s
        self.min_lines = min_lines
        self._pending = b""
        self._eof = False

    def _read(self, timeout_s: float) -> list[bytes]:
        """Lines that arrive within ``timeout_s`` (one read); sets ``_eof`` at end of input."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not ready:
            return []
        chunk = os.read(self.fd, _READ_BYTES)
        if not chunk:
            self._eof = True
            last, self._pending = self._pending, b""
            return [last] if last else []  # a last line without its newline
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return lines

    def blocks(self) -> Iterator[list[bytes]]:
        """Blocks of lines; an empty block after ``timeout_s`` without input; ends at end of
        input."""
        while not self._eof:
            lines = self._read(self.timeout_s)
            deadline = time.monotonic() + self.linger_s
            while lines and len(lines) < self.min_lines and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                lines += self._read(left)
            if lines or not self._eof:
                yield lines


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Read the config line and rows from ``stdin`` until end of input; returns the exit code.

    Rows are inserted by this thread, a block at a time (what arrived within ``_LINGER_S`` of
    the block's first row, in batches of ``batch_size``): while it inserts, the pipe fills and
    the API waits, which is the back-pressure; no queue or second thread sits between the pipe
    and the store.
    """
    defaults = WriterConfig()
    reader = _LineReader(
        stdin.fileno(),
        timeout_s=defaults.flush_interval_s,
        linger_s=_LINGER_S,
        min_lines=defaults.batch_size,
    )
    blocks = reader.blocks()
    lines: list[bytes] = []
    while not lines:
        lines = next(blocks, [b"{}"])
    config: dict[str, Any] = orjson.loads(lines.pop(0))
    store = Store(config["database_url"], run_migrations=False)  # the API process migrates
    writer = LogWriter(
        store,
        Path(config["spool_dir"]),
        WriterConfig(**config["writer"]),
        hooks=AUDIT_HOOKS,
    )
    reader.timeout_s = writer.config.flush_interval_s
    reader.min_lines = writer.config.batch_size
    # SQLAlchemy and the models leave ~10^5 long-lived objects; every row decoded allocates,
    # and the collections it triggers would walk them all (as in the API process).
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(writer, stdout, stop), daemon=True)
    reporter.start()
    try:
        for block in itertools.chain([lines], blocks):
            rows = []
            for line in block:
                if not line.strip():
                    continue
                try:
                    rows.append(writer.decode(line))
                except (ValueError, KeyError, TypeError) as exc:  # never from PipeLogWriter
                    print(f"log writer: dropped an undecodable line: {exc!r}", file=sys.stderr)
            if rows:
                writer.write_batch(rows)
            writer.retry_spool()
    finally:
        writer.close()
        stop.set()
        reporter.join()
        _status(writer, stdout)
        store.dispose()
    return 0


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))


if __name__ == "__main__":
    main()

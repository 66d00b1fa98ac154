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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from trajops.security.audit import AUDIT_HOOKS
from trajops.store.db import Store
from trajops.store.writer import LogWriter, WriterConfig

_STATUS_INTERVAL_S = 0.1
_READ_BYTES = 1 << 20


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
    """Complete lines from a pipe, in blocks of whatever has arrived (one ``read`` each)."""

    def __init__(self, fd: int, timeout_s: float) -> None:
        self.fd = fd
        self.timeout_s = timeout_s
        self._pending = b""

    def blocks(self) -> Iterator[list[bytes]]:
        """Lists of lines as they arrive; an empty list after ``timeout_s`` without input; ends
        at end of input (a last line without its newline included)."""
        while True:
            ready, _, _ = select.select([self.fd], [], [], self.timeout_s)
            if not ready:
                yield []
                continue
            chunk = os.read(self.fd, _READ_BYTES)
            if not chunk:
                break
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            yield lines
        if self._pending:
            yield [self._pending]


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Read the config line and rows from ``stdin`` until end of input; returns the exit code.

    Rows are inserted by this thread, a block at a time (everything that arrived since the last
    insert, in batches of ``batch_size``): while it inserts, the pipe fills and the API waits,
    which is the back-pressure; no queue or second thread sits between the pipe and the store.
    """
    reader = _LineReader(stdin.fileno(), WriterConfig().flush_interval_s)
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

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
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

import orjson

from trajops.security.audit import AUDIT_HOOKS
from trajops.store.db import Store
from trajops.store.pipe_writer import line_blocks
from trajops.store.writer import LogWriter, WriterConfig

_STATUS_INTERVAL_S = 0.1
_READ_BYTES = 1 << 20
GC_THRESHOLD = 100_000
"""Young-generation threshold of the writer process (Python's default: 700). Above the
objects that the rows of two group-commit windows (one being inserted, the next gathering)
hold at the rates one writer process sustains, so that steady logging triggers no collection
at all (docs/performance.md)."""


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


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Read the config line and rows from ``stdin`` until end of input; returns the exit code.

    This thread reads the pipe a block at a time and decodes the rows; the ``LogWriter``'s
    thread inserts them in batches. Reading stays decoupled from the database: while an insert
    waits (a commit, another writer process holding SQLite's write lock), the pipe keeps being
    drained into the writer's bounded queue; only when that is full does this thread wait, the
    pipe fill and the API's back-pressure apply.
    """
    blocks = line_blocks(stdin.fileno(), _READ_BYTES)
    first = next(blocks, [b"{}"])
    config: dict[str, Any] = orjson.loads(first[0])
    store = Store(config["database_url"], run_migrations=False)  # the API process migrates
    writer = LogWriter(
        store,
        Path(config["spool_dir"]),
        WriterConfig(**config["writer"]),
        hooks=AUDIT_HOOKS,
    )
    # SQLAlchemy and the models leave ~10^5 long-lived objects; every row decoded allocates,
    # and the collections it triggers would walk them all (as in the API process).
    gc.collect()
    gc.freeze()
    # Decoded rows are acyclic JSON data that reference counting frees once inserted. Python
    # counts tracked objects allocated minus freed, so a collection starts when the rows alive
    # at once pass the threshold, and it walks every row still waiting in the queue or the
    # batch. At the default (700) that was every ~25 requests' rows, ~4 % of the writer's CPU;
    # at 20,000, ~1 µs per request at 9k requests/s in pauses of a few milliseconds
    # (bench/log_writer.py, "process"). At GC_THRESHOLD two windows' rows stay below it.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    writer.start()
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(writer, stdout, stop), daemon=True)
    reporter.start()
    try:
        for block in itertools.chain([first[1:]], blocks):
            rows = []
            for line in block:
                if not line.strip():
                    continue
                try:
                    rows.append(writer.decode(line))
                except (ValueError, KeyError, TypeError) as exc:  # never from PipeLogWriter
                    print(f"log writer: dropped an undecodable line: {exc!r}", file=sys.stderr)
            writer.put_rows(rows)
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

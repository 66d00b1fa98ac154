"""The writer process of an API process: its write-ahead log into the store.

Run as ``python -m trajops.logpipe.process`` by
:class:`~trajops.logpipe.durable.DurableLogWriter`, one per API process. stdin: one JSON config
line (database URL, spool folder, write-ahead log folder, batching); its end means the API
process has gone. stdout: JSON status lines (rows stored, written, spooled; store health) every
0.1 s and once at exit. It tails the log (:class:`~trajops.logpipe.tail.WalTailer`) until the
API process has closed it (or died) and every row is stored, adopting meanwhile the logs of
processes that died with nobody to drain them. SIGINT and SIGTERM are ignored: the API process
decides when logging ends, so a signal sent to the whole process group (Ctrl-C, a service
manager) cannot cut the log short.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

from trajops.logpipe.tail import CONSUMER_FILE, WalTailer, consume
from trajops.logpipe.wal import try_lock
from trajops.logpipe.writer import LogWriter, WriterConfig
from trajops.security.audit import AUDIT_HOOKS
from trajops.store.db import Store

_STATUS_INTERVAL_S = 0.1
GC_THRESHOLD = 100_000
"""Young-generation threshold of the writer process (Python's default: 700). Above the
objects that the rows of two group-commit windows (one being inserted, the next gathering)
hold, so that steady logging triggers no collection at all (docs/performance.md)."""


def _status(tailer: WalTailer, out: IO[bytes]) -> None:
    writer = tailer.writer
    line = {
        "handled": tailer.handled,
        "written": writer.written,
        "spooled": writer.spooled,
        "healthy": writer.healthy,
    }
    out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    out.flush()


def _report(tailer: WalTailer, out: IO[bytes], stop: threading.Event) -> None:
    while not stop.wait(_STATUS_INTERVAL_S):
        _status(tailer, out)


def _consumer_lock(wal_dir: Path, timeout_s: float = 30.0) -> int | None:
    """The folder's consumer lock (a replaced writer process may still be letting go)."""
    deadline = time.monotonic() + timeout_s
    while (lock := try_lock(wal_dir / CONSUMER_FILE)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return lock


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Read the config line from ``stdin`` and consume the log; returns the exit code."""
    config: dict[str, Any] = orjson.loads(stdin.readline() or b"{}")
    wal_dir = Path(config["wal_dir"])
    store = Store(config["database_url"], run_migrations=False)  # the API process migrates
    spool = Path(config["spool_dir"])
    writer_config = WriterConfig(**config["writer"])

    def make_writer() -> LogWriter:
        return LogWriter(store, spool, writer_config, hooks=AUDIT_HOOKS)

    lock = _consumer_lock(wal_dir)
    if lock is None:
        print(f"log writer: {wal_dir} has another consumer", file=sys.stderr)
        return 1
    # SQLAlchemy and the models leave ~10^5 long-lived objects; every row decoded allocates,
    # and the collections it triggers would walk them all (as in the API process). Decoded
    # rows are acyclic and freed by reference counting: with GC_THRESHOLD, two group-commit
    # windows' rows stay below the young-generation threshold.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    tailer = WalTailer(wal_dir, make_writer().start())
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(tailer, stdout, stop), daemon=True)
    reporter.start()
    try:
        consume(tailer, sweep=make_writer)
    finally:
        stop.set()
        reporter.join()
        _status(tailer, stdout)
        os.close(lock)
        store.dispose()
    return 0


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))


if __name__ == "__main__":
    main()

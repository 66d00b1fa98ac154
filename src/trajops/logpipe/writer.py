"""Asynchronous, bounded, lossless writer for log tables (predictions, feedback, audit).

Callers on the hot path hand over rows and return at once. A background thread inserts them in
batches. While the database is unreachable, batches go to an append-only spool file (JSON lines,
fsynced); when it answers again, the spool is replayed first. Inserts are idempotent on each
table's natural key, so a replay after a partial failure never duplicates a row.

The spool and its sharing between processes are :mod:`trajops.logpipe.spool`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import DateTime, Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trajops.logpipe.lines import (
    Columns,
    Row,
    column_rows,
    decode_line,
    expand_rows,
)
from trajops.logpipe.rowqueue import RowQueue, request_chunks
from trajops.logpipe.spool import (
    MAX_CLAIMS_PER_REPLAY,
    append_spool,
    claim_spool,
    count_spooled,
    spool_files,
)
from trajops.store.db import Store, insert_rows
from trajops.store.models import Base

log = logging.getLogger(__name__)

InsertHook = Callable[[Session, list[dict[str, Any]]], list[dict[str, Any]]]
"""Called inside the inserting transaction with one table's rows; returns the rows to insert.

Lets a table derive columns that depend on what is already stored (e.g. the audit hash chain,
computed under a lock) without the writer knowing about it. Must be idempotent on replay.
"""


@dataclass(frozen=True)
class WriterConfig:
    queue_size: int = 10_000
    batch_size: int = 200
    flush_interval_s: float = 0.5
    retry_interval_s: float = 2.0
    gather_s: float = 0.1
    """How long a batch that is not full waits for more rows (group commit: a transaction's
    fixed cost, its commit and the audit chain's lock and head read, is shared by more rows)."""


class LogSink(Protocol):
    """What the serving process needs from its log
    (:class:`~trajops.logpipe.durable.DurableLogWriter`)."""

    config: WriterConfig
    written: int
    spooled: int
    healthy: bool
    submitted: int

    def submit(self, table: str, rows: Iterable[dict[str, Any]]) -> None: ...

    def submit_columns(self, table: str, common: dict[str, Any], columns: Columns) -> None:
        """Rows that share ``common`` values, given column by column (see :func:`encode_rows`)."""
        ...

    async def wait_durable(self) -> None:
        """Return once every row submitted so far survives a crash of this process."""
        ...

    @property
    def handled(self) -> int:
        """Rows of those submitted that are inserted or spooled."""
        ...

    @property
    def pending(self) -> int: ...

    def spool_size(self) -> int: ...

    def flush(self, timeout: float = 10.0) -> bool: ...

    def start(self) -> LogSink: ...

    def close(self, timeout: float = 10.0) -> None: ...


def wait_until(done: Callable[[], bool], timeout: float, *, poll_s: float = 0.01) -> bool:
    """Poll ``done`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class LogWriter:
    """Bounded background writer with a spool file for outages.

    Args:
        store: the operational store.
        spool_dir: folder for ``spool.jsonl`` (created on demand).
        config: queue size, batch size and timing.
        on_spool: called with the number of rows spooled (for metrics).
        hooks: per-table :data:`InsertHook` run in the inserting transaction.
    """

    def __init__(
        self,
        store: Store,
        spool_dir: Path,
        config: WriterConfig | None = None,
        *,
        on_spool: Callable[[int], None] | None = None,
        hooks: Mapping[str, InsertHook] | None = None,
    ) -> None:
        self.store = store
        self.config = config or WriterConfig()
        self.spool_dir = spool_dir
        self._queue = RowQueue(self.config.queue_size)
        self._replay_lock = threading.Lock()  # one replay per writer at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_spool = on_spool
        self._hooks: dict[str, InsertHook] = dict(hooks or {})
        self._last_retry = 0.0
        self.written = 0
        self.spooled = 0
        self.submitted = 0
        self.handled = 0
        """Rows submitted, and rows of those already inserted or spooled (replays excluded)."""
        self.healthy = True
        self._tables: dict[str, Table] = {t.name: t for t in Base.metadata.sorted_tables}
        self._datetimes: dict[str, tuple[str, ...]] = {
            name: tuple(c.name for c in t.columns if isinstance(c.type, DateTime))
            for name, t in self._tables.items()
        }

    # --- producer side (any thread; submit never blocks, put_rows waits) ---------------
    def submit(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Hand rows for ``table`` to the writer; spools directly if the queue is full."""
        if table not in self._tables:
            raise ValueError(f"unknown table {table!r}")
        queued = [(table, row) for row in rows]
        self.submitted += len(queued)
        if not self._queue.offer(queued):
            self._spool(queued)
            self.handled += len(queued)

    def submit_columns(self, table: str, common: dict[str, Any], columns: Columns) -> None:
        """Rows that share ``common`` values, given column by column (see :func:`encode_rows`)."""
        column_rows(columns)
        lists = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in columns.items()}
        self.submit(table, expand_rows(common, lists))

    def put_rows(self, groups: Iterable[list[Row]]) -> None:
        """Queue groups of ``(table, row)`` pairs in order, each written in one transaction,
        waiting for room when the queue is full (none is queued when one names an unknown
        table).

        For a producer that must not spool but slow down instead: the writer process, whose
        waiting lets its pipe fill and the API apply back-pressure.
        """
        block = [group for group in groups if group]
        for group in block:
            for name, _ in group:
                if name not in self._tables:
                    raise ValueError(f"unknown table {name!r}")
        self.submitted += sum(map(len, block))
        self._queue.put(block)

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> LogWriter:
        self._thread = threading.Thread(target=self._run, name="trajops-log-writer", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop after writing (or spooling) everything still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while batch := self._drain([]):
            self._flush(batch)

    @property
    def pending(self) -> int:
        """Rows queued in memory, not yet written or spooled."""
        return len(self._queue)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted so far is inserted or spooled; False on timeout."""
        return wait_until(lambda: self.handled >= self.submitted, timeout)

    def spool_size(self) -> int:
        """Rows waiting in spool files for the database to come back."""
        return count_spooled(self.spool_dir)

    # --- consumer thread --------------------------------------------------------------
    def _drain(self, batch: list[Row]) -> list[Row]:
        """``batch`` topped up from the queue with whole groups, up to ``batch_size`` rows (one
        group alone may be larger)."""
        batch.extend(self._queue.take(self.config.batch_size - len(batch), first_whole=not batch))
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._queue.take(self.config.batch_size, self.config.flush_interval_s)
            if 0 < len(batch) < self.config.batch_size and not self._stop.wait(
                self.config.gather_s
            ):
                self._drain(batch)  # group commit: rows that came meanwhile share the transaction
            if batch:
                self._flush(batch)
            if (
                self._has_spool()
                and time.monotonic() - self._last_retry >= self.config.retry_interval_s
            ):
                self.replay()

    def _insert(self, rows: list[Row]) -> None:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for name, row in rows:
            by_table.setdefault(name, []).append(row)
        with self.store.session() as session:
            for name, values in by_table.items():
                if name in self._hooks:
                    values = self._hooks[name](session, values)
                insert_rows(session, self._tables[name], values, skip_conflicts=True)

    def _flush(self, batch: list[Row]) -> None:
        if not batch:
            return
        try:
            self._write_or_spool(batch)
        finally:
            self.handled += len(batch)

    def _write_or_spool(self, batch: list[Row]) -> None:
        if self._has_spool():
            # Keep order: while older rows wait in the spool, newer ones queue behind them.
            self._spool(batch)
            return
        try:
            self._insert(batch)
            self.written += len(batch)
            self.healthy = True
        except SQLAlchemyError as exc:
            log.warning(
                "store unreachable, spooling %d rows: %s", len(batch), exc.__class__.__name__
            )
            self.healthy = False
            self._last_retry = time.monotonic()
            self._spool(batch)

    def _has_spool(self) -> bool:
        return bool(spool_files(self.spool_dir))

    def _spool(self, rows: list[Row]) -> None:
        lines = "".join(
            json.dumps({"table": t, "row": r}, default=_json_default, separators=(",", ":")) + "\n"
            for t, r in rows
        )
        append_spool(self.spool_dir, lines.encode())
        self.spooled += len(rows)
        if self._on_spool is not None:
            self._on_spool(len(rows))

    def decode(self, line: str | bytes) -> Row:
        """One spool line (``{"table", "row"}``) back into a row, with its datetimes."""
        rows = self.decode_rows(line)
        if len(rows) != 1:
            raise TypeError(f"a line of {len(rows)} rows, expected one")
        return rows[0]

    def decode_rows(self, line: str | bytes) -> list[Row]:
        """A log line back into its rows, with their datetimes (:func:`decode_line`)."""
        return decode_line(line, self._datetimes)

    def replay(self) -> int:
        """Write spooled rows to the database, one claimed file at a time (:func:`claim_spool`);
        returns how many were replayed. When the store fails, the file being replayed is left
        to the next try (its rows are inserted idempotently then)."""
        self._last_retry = time.monotonic()
        replayed = 0
        with self._replay_lock:
            for _ in range(MAX_CLAIMS_PER_REPLAY):  # files other processes spool meanwhile
                claim = claim_spool(self.spool_dir)
                if claim is None:
                    break
                path, fd = claim
                try:
                    with open(fd, "rb", closefd=False) as fh:
                        rows = [
                            row
                            for line in fh.read().splitlines()
                            if line
                            for row in self.decode_rows(line)
                        ]
                    try:
                        for chunk in request_chunks(rows, 1000):
                            self._insert(chunk)
                    except SQLAlchemyError:
                        self.healthy = False
                        return replayed
                    path.unlink(missing_ok=True)
                finally:
                    os.close(fd)  # the claim's lock goes with it
                self.written += len(rows)
                replayed += len(rows)
                self.healthy = True
                log.info("replayed %d spooled rows from %s", len(rows), path.name)
        return replayed

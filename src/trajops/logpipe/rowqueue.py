"""The log writer's in-memory queue: bounded, moved a block at a time, in row groups that are
never split (the rows of one submit reach the store in one transaction)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from functools import partial

from trajops.logpipe.lines import Row


def request_chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` in chunks of about ``size`` that never split a run of consecutive rows of one
    table and request (a spool file holds a request's rows together, one per line)."""
    chunk: list[Row] = []
    last: tuple[str, object] | None = None
    for table, row in rows:
        key = (table, row.get("request_id"))
        if len(chunk) >= size and (key != last or key[1] is None):
            yield chunk
            chunk = []
        chunk.append((table, row))
        last = key
    if chunk:
        yield chunk


class RowQueue:
    """A bounded FIFO of row groups that moves them a block at a time, never splitting one.

    A group is the rows of one submit (the agents of one request): they reach the store in one
    transaction, so a reader never sees some of a request's rows and not the others.
    ``queue.Queue`` takes its lock and notifies its conditions once per row; here the pipe
    reader queues hundreds of rows at once and the writer thread takes a whole batch, each
    block for one lock round. Any number of threads may put and take (every wait
    re-checks its condition). A group larger than ``maxsize`` goes in alone, into an empty
    queue.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._groups: deque[list[Row]] = deque()
        self._rows = 0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._rows

    def _fits(self, n: int) -> bool:
        return self._rows == 0 or self._rows + n <= self.maxsize

    def _append(self, group: list[Row]) -> None:
        self._groups.append(group)
        self._rows += len(group)

    def offer(self, group: list[Row]) -> bool:
        """Queue ``group`` whole if it fits (True), else nothing (False). Never waits."""
        if not group:
            return True
        with self._cond:
            if not self._fits(len(group)):
                return False
            self._append(group)
            self._cond.notify_all()
        return True

    def put(self, groups: Iterable[list[Row]]) -> None:
        """Queue ``groups`` in order, each whole, waiting for room as the consumer takes rows."""
        with self._cond:
            for group in groups:
                if group:
                    self._cond.wait_for(partial(self._fits, len(group)))
                    self._append(group)
                    self._cond.notify_all()

    def take(self, most: int, timeout: float = 0.0, *, first_whole: bool = True) -> list[Row]:
        """Whole groups of up to ``most`` rows in all, oldest first (with ``first_whole``, the
        first group even when it alone is larger); waits up to ``timeout`` seconds for one."""
        with self._cond:
            if not self._groups and timeout > 0:
                self._cond.wait_for(lambda: bool(self._groups), timeout)
            batch: list[Row] = []
            groups = self._groups
            while groups and (len(batch) + len(groups[0]) <= most or (first_whole and not batch)):
                batch.extend(groups.popleft())
            if batch:
                self._rows -= len(batch)
                self._cond.notify_all()  # room for a producer waiting in put
        return batch

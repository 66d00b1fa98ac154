"""Aware UTC datetimes as fixed-width text, the per-second part formatted once.

The log writer formats two datetimes per served request: SQLite's stored form of each row's
``created_at`` and the audit chain's canonical ``...Z`` form. ``datetime.isoformat`` and
SQLAlchemy's SQLite ``DATETIME`` processor (a ``%`` format over a dict of the fields) cost
0.9-1.4 µs a value; rows of one batch share a few seconds, so :class:`UtcText` formats each
second once and appends the microseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

_MAX_SECONDS = 4096  # cached seconds before the cache starts over (a batch spans a few)


class UtcText:
    """``YYYY-MM-DD<sep>HH:MM:SS.ffffff<suffix>`` of an aware UTC datetime at or after 1970.

    Calling it with anything else (naive, another zone, before 1970, a subclass) returns
    ``None``: the caller keeps its general formatter for those.
    """

    def __init__(self, sep: str, suffix: str = "") -> None:
        self.sep = sep
        self.suffix = suffix
        self._seconds: dict[int, str] = {}

    def __call__(self, moment: object) -> str | None:
        if type(moment) is not datetime or moment.tzinfo is not UTC:
            return None
        stamp = moment.timestamp()
        if stamp < 0:
            return None
        whole = int(stamp)
        head = self._seconds.get(whole)
        if head is None:
            if len(self._seconds) >= _MAX_SECONDS:
                self._seconds.clear()
            head = moment.replace(microsecond=0, tzinfo=None).isoformat(self.sep)
            self._seconds[whole] = head
        return f"{head}.{moment.microsecond:06d}{self.suffix}"

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
    """``YYYY-MM-DD<sep>HH:MM:SS.ffffff<suffix>`` of an aware UTC datetime of year 1000 or later.

    Calling it with anything else (naive, another zone, an earlier year, a subclass) returns
    ``None``: the caller keeps its general formatter for those.
    """

    def __init__(self, sep: str, suffix: str = "") -> None:
        self.sep = sep
        self.suffix = suffix
        self._seconds: dict[tuple[int, int, int, int, int, int], str] = {}

    def __call__(self, moment: object) -> str | None:
        if type(moment) is not datetime or moment.tzinfo is not UTC or moment.year < 1000:
            return None
        # the fields themselves, not timestamp(): a float loses the microseconds of far years
        second = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
        head = self._seconds.get(second)
        if head is None:
            if len(self._seconds) >= _MAX_SECONDS:
                self._seconds.clear()
            head = moment.replace(microsecond=0, tzinfo=None).isoformat(self.sep)
            self._seconds[second] = head
        return f"{head}.{moment.microsecond:06d}{self.suffix}"

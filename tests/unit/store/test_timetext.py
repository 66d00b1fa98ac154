"""UtcText: the same text as the formatters it stands in for, and None where it does not apply."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME

from trajops._timetext import _MAX_SECONDS, UtcText

SQLITE_DATETIME = DATETIME().bind_processor(sqlite.dialect())


def _moments() -> list[datetime]:
    rng = random.Random(7)
    start = datetime(1000, 1, 1, tzinfo=UTC)
    found = [
        start,
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 0, 0, 0, tzinfo=UTC),  # the next second, microsecond 0
        datetime(2028, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC),  # far years: no float
        datetime(9999, 12, 31, 23, 59, 59, 0, tzinfo=UTC),
    ]
    found += [
        start + timedelta(microseconds=rng.randrange(0, 9000 * 365 * 86_400 * 10**6))
        for _ in range(2000)
    ]
    # many values within few seconds: the cached second's text is reused
    base = datetime(2026, 12, 6, 0, 6, 25, tzinfo=UTC)
    found += [base + timedelta(microseconds=rng.randrange(0, 3_000_000)) for _ in range(500)]
    return found


def test_sqlite_text_matches_sqlalchemys_datetime_processor() -> None:
    text = UtcText(" ")
    for moment in _moments():
        assert text(moment) == SQLITE_DATETIME(moment), moment


def test_zulu_text_matches_isoformat() -> None:
    text = UtcText("T", "Z")
    for moment in _moments():
        assert text(moment) == moment.isoformat(timespec="microseconds")[:-6] + "Z", moment


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 6, 1, 2, 3),  # naive
        datetime(2026, 12, 6, 1, 2, 3, tzinfo=timezone(timedelta(hours=5))),  # another zone
        datetime(999, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before year 1000
        "2026-12-06 01:02:03",
        None,
    ],
)
def test_values_it_does_not_format_are_left_to_the_caller(value: object) -> None:
    assert UtcText(" ")(value) is None


def test_the_cache_of_seconds_is_bounded() -> None:
    text = UtcText(" ")
    base = datetime(2026, 12, 6, tzinfo=UTC)
    for second in range(3 * _MAX_SECONDS):
        moment = base + timedelta(seconds=second, microseconds=second)
        assert text(moment) == SQLITE_DATETIME(moment)
    assert len(text._seconds) <= _MAX_SECONDS

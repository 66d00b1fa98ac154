"""Time helpers shared by keys, audit and retention: UTC normalisation and user time references."""

from __future__ import annotations

from datetime import UTC, datetime

from trajops._duration import parse_duration
from trajops.errors import ValidationError


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive datetimes, stored as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_iso(text: str, *, field: str) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def parse_past(text: str, *, field: str, now: datetime | None = None) -> datetime:
    """A point in the past: ``"7d"`` (that long ago) or an ISO date/time (naive means UTC).

    Raises:
        ValidationError: neither a duration nor an ISO date, naming ``field``.
    """
    now = now or utcnow()
    parsed = _parse_iso(text, field=field)
    if parsed is not None:
        return parsed
    try:
        return now - parse_duration(text, field=field)
    except ValidationError:
        raise ValidationError(
            f"invalid {field} {text!r}: expected a duration such as 7d or an ISO date such as 2026-01-01",
            details=[{"loc": [field], "msg": "not a duration or ISO date"}],
        ) from None


def parse_future(text: str, *, field: str, now: datetime | None = None) -> datetime:
    """A point in the future: ``"30d"`` (from now) or an ISO date/time that has not passed yet.

    Raises:
        ValidationError: not a duration or ISO date, or a date in the past, naming ``field``.
    """
    now = now or utcnow()
    parsed = _parse_iso(text, field=field)
    if parsed is None:
        try:
            parsed = now + parse_duration(text, field=field)
        except ValidationError:
            raise ValidationError(
                f"invalid {field} {text!r}: expected a duration such as 30d or an ISO date such as 2027-01-01",
                details=[{"loc": [field], "msg": "not a duration or ISO date"}],
            ) from None
    if parsed <= now:
        raise ValidationError(
            f"{field} {text!r} is in the past",
            details=[{"loc": [field], "msg": "must be in the future"}],
        )
    return parsed

"""Data minimisation for stored inputs: coarser coordinates and bucketed timestamps.

Identifiers are handled by :class:`trajops.privacy.Pseudonymiser`; these helpers reduce what the
stored values themselves reveal (GDPR art. 5(1)(c) and 25): a position rounded to 10 cm
(``decimals=1``) still scores a forecast, and a timestamp floored to a 15-minute bucket still
serves drift windows, but both make re-identification by linking with other sources harder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stored_coordinates(
    points: np.ndarray, decimals: int, *, rounded_to: int | None = None
) -> list[list[Any]]:
    """``points`` rounded to ``decimals`` places, one nested list per entry of the first axis
    (e.g. per agent), ready for a JSON column.

    Args:
        points: ``(..., 2)`` coordinates in metres, e.g. ``(N, T_obs, 2)``.
        decimals: places kept (0..8); 4 keeps 0.1 mm, 1 keeps 10 cm.
        rounded_to: places ``points`` is already rounded to, when it is: not rounded again
            when that keeps no more than ``decimals`` (rounding would change nothing).
    """
    out: list[list[Any]] = stored_array(points, decimals, rounded_to=rounded_to).tolist()
    return out


def stored_array(points: np.ndarray, decimals: int, *, rounded_to: int | None = None) -> np.ndarray:
    """``points`` as :func:`stored_coordinates` keeps them, as a float64 array (one rounding
    for a whole request; a log line carries it as nested JSON lists)."""
    if not 0 <= decimals <= 8:
        raise ValueError(f"decimals must be in 0..8, got {decimals}")
    values = np.asarray(points, dtype=float)
    if rounded_to is None or rounded_to > decimals:
        values = values.round(decimals)
    return np.ascontiguousarray(values)  # a view (a sample axis picked) is copied once


def bucket_time(moment: datetime, bucket_s: float) -> datetime:
    """``moment`` floored to a multiple of ``bucket_s`` seconds since the epoch (UTC).

    ``bucket_s = 0`` returns ``moment`` unchanged. Naive datetimes are taken as UTC.
    """
    if bucket_s < 0:
        raise ValueError(f"bucket_s must be >= 0, got {bucket_s}")
    if bucket_s == 0:
        return moment
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    seconds = (aware - _EPOCH).total_seconds()
    floored = seconds - (seconds % bucket_s)
    return datetime.fromtimestamp(floored, tz=UTC)

"""Parsing of human durations such as ``30s``, ``15m``, ``1h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

from trajops.errors import ValidationError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str, *, field: str = "window") -> timedelta:
    """``"15m" -> timedelta(minutes=15)``; raises ValidationError naming ``field`` otherwise."""
    match = _PATTERN.match(text or "")
    if match is None:
        raise ValidationError(
            f"invalid {field} {text!r}: expected a number and a unit s, m, h, d or w (e.g. 15m, 7d)",
            details=[{"loc": [field], "msg": "invalid duration"}],
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValidationError(
            f"{field} must be positive", details=[{"loc": [field], "msg": "must be > 0"}]
        )
    return timedelta(seconds=seconds)

"""Model references as callers spell them: a registry alias, or a version (``3``, ``v3``, ``03``).

One canonical spelling per version (``"3"``), so ``"03"`` is neither a second load nor a second
``model_version`` value in stored rows.
"""

from __future__ import annotations

import re

_VERSION_RE = re.compile(r"^[vV]?(\d{1,18})$")

MAX_VERSION = 2**31 - 1
"""Largest version a registry stores (an INTEGER column); a larger number names no version."""


def parse_version(ref: str | int) -> int | None:
    """``3``, ``"3"``, ``"03"`` or ``"v3"`` -> 3; anything else (an alias) -> None."""
    if isinstance(ref, int):
        return ref
    match = _VERSION_RE.match(ref.strip())
    return int(match.group(1)) if match else None


def canonical_ref(ref: str) -> str:
    """A version in its one spelling (``"v03"`` -> ``"3"``); an alias unchanged."""
    version = parse_version(ref)
    return ref if version is None else str(version)


def is_version(ref: str) -> bool:
    """Whether ``ref`` (canonical) names a version rather than an alias."""
    return ref.isdigit()

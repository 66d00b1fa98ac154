"""Waiting for what the service writes asynchronously (the prediction and audit log).

The log writer (a writer process by default) inserts rows some tens of milliseconds after the
response; tests poll for the effect instead of sleeping a guessed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float = 15.0,
    every_s: float = 0.05,
) -> T:
    """Call `probe` until `done(result)` holds or `timeout_s` passes; return the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(every_s)


def post_until_logged(
    http: httpx.Client, path: str, *, timeout_s: float = 15.0, **kwargs: Any
) -> httpx.Response:
    """POST, retrying while what it refers to is still in the write queue (404)."""
    return eventually(
        lambda: http.post(path, **kwargs), lambda r: r.status_code != 404, timeout_s=timeout_s
    )

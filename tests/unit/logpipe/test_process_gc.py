"""The writer process's GC threshold: steady logging triggers no garbage collection.

Rows decoded from the pipe are acyclic and freed by reference counting, but a young-generation
collection starts whenever the tracked objects allocated and not yet freed pass the threshold,
and it walks every row still waiting to be inserted. The rows alive at once in steady logging
(one group-commit window being inserted while the next one gathers) must stay below it
(docs/performance.md: at 20,000, ~1 µs per request went to collections at 9k requests/s).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.rows import prediction_rows
from trajops.logpipe.lines import encode_row
from trajops.logpipe.process import GC_THRESHOLD
from trajops.logpipe.writer import LogWriter, WriterConfig
from trajops.security.audit import audit_row
from trajops.store import Store

FASTEST_RPS = 11_000
"""Above the most requests/s one writer process has been fed here (1 worker: 9.1k on
2026-12-06, docs/performance.md)."""


def _window_lines() -> list[bytes]:
    """The pipe lines of two group-commit windows at ``FASTEST_RPS`` (one being inserted, the
    next gathering): a prediction row and an audit row per request."""
    requests = 2 * int(FASTEST_RPS * WriterConfig().gather_s)
    lines = []
    for i, row in enumerate(prediction_rows(requests)):
        lines.append(encode_row("predictions", row))
        audit = audit_row(route="/v1/predict", method="POST", status=200, request_id=f"r{i}")
        lines.append(encode_row("audit_log", audit | {"record_id": f"{i:032x}"}))
    return lines


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """Young-generation collections started while the test runs (the list grows)."""
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    saved = gc.get_threshold()
    gc.callbacks.append(count)
    try:
        yield started
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*saved)


def _hold_two_windows(tmp_path: Path, threshold: int, collections: list[int]) -> int:
    writer = LogWriter(Store(f"sqlite:///{tmp_path / 'ops.db'}"), tmp_path / "spool")
    lines = _window_lines()
    gc.collect()  # the young generation's count starts at 0
    gc.set_threshold(threshold, *gc.get_threshold()[1:])
    before = len(collections)
    writer.put_rows([writer.decode_rows(line) for line in lines])  # the queue holds them all
    assert writer.pending == len(lines)
    return len(collections) - before


def test_two_group_commit_windows_of_rows_trigger_no_collection(
    tmp_path: Path, collections: list[int]
) -> None:
    assert _hold_two_windows(tmp_path, GC_THRESHOLD, collections) == 0


def test_the_previous_threshold_collected_within_two_windows(
    tmp_path: Path, collections: list[int]
) -> None:
    # The same rows at 20,000: collections start (so the test above can fail).
    assert _hold_two_windows(tmp_path, 20_000, collections) >= 1

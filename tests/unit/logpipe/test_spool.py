"""One spool folder shared by several processes: appends, claims and replays never lose a row.

API workers, their writer processes and replicas on one volume spool into the same folder
while the store is down, and each replays when it comes back. These tests run that with real
processes on a real SQLite store: the rows that went into the spool are the rows in the table,
each once, and no spool file is left.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from trajops.logpipe.lines import encode_row
from trajops.logpipe.spool import append_spool, count_spooled, spool_files
from trajops.logpipe.writer import LogWriter
from trajops.store.db import Store
from trajops.store.models import PredictionRecord

APPENDERS = 2
REPLAYERS = 2
BATCHES = 400
ROWS_PER_BATCH = 4


def _lines(prefix: str, n: int) -> bytes:
    row = {
        "created_at": datetime(2026, 12, 4, tzinfo=UTC),
        "model_name": "m",
        "model_version": "1",
        "variant": "default",
        "agent_key": "k",
        "scene_key": None,
        "inputs": [[0.0, 0.0]] * 8,
        "outputs": [[1.0, 1.0]] * 12,
        "step_s": 0.4,
        "latency_ms": 1.0,
    }
    return b"".join(
        encode_row("predictions", {**row, "request_id": f"{prefix}-{i}"}) for i in range(n)
    )


def _append(spool: Path, name: str) -> None:
    for b in range(BATCHES):
        append_spool(spool, _lines(f"{name}-{b}", ROWS_PER_BATCH))
        time.sleep(0.0005)


def _replay_until(url: str, spool: Path, stop_file: Path) -> None:
    store = Store(url, run_migrations=False)
    writer = LogWriter(store, spool)
    while not stop_file.exists():
        writer.replay()
    writer.replay()
    store.dispose()


def _stored(url: str) -> list[str]:
    with Store(url, run_migrations=False).session() as session:
        return list(session.scalars(select(PredictionRecord.request_id)))


def test_concurrent_appends_and_replays_keep_every_row_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Store(url).dispose()  # migrated
    spool, stop = tmp_path / "spool", tmp_path / "stop"
    ctx = multiprocessing.get_context("spawn")
    replayers = [
        ctx.Process(target=_replay_until, args=(url, spool, stop)) for _ in range(REPLAYERS)
    ]
    appenders = [ctx.Process(target=_append, args=(spool, f"p{i}")) for i in range(APPENDERS)]
    for proc in replayers + appenders:
        proc.start()
    for proc in appenders:
        proc.join(120)
        assert proc.exitcode == 0
    stop.touch()
    for proc in replayers:
        proc.join(120)
        assert proc.exitcode == 0  # a replayer that crashed (e.g. on a file gone) fails here
    expected = {
        f"p{i}-{b}-{r}"
        for i in range(APPENDERS)
        for b in range(BATCHES)
        for r in range(ROWS_PER_BATCH)
    }
    stored = _stored(url)
    assert len(stored) == len(set(stored)) and set(stored) == expected
    assert spool_files(spool) == [] and count_spooled(spool) == 0


def test_a_dead_replays_claim_is_taken_over_and_a_live_one_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    spool = tmp_path / "spool"
    spool.mkdir()
    # a replay that died: its claimed file has no lock holder (the name before claims had ids)
    (spool / "spool.replaying.jsonl").write_bytes(_lines("dead", 3))
    # a replay in progress elsewhere: its claim is locked
    live = spool / "spool.replaying-live.jsonl"
    live.write_bytes(_lines("live", 2))
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    append_spool(spool, _lines("new", 4))
    writer = LogWriter(store, spool)
    try:
        assert writer.spool_size() == 9
        assert writer.replay() == 7
        assert sorted(_stored(url)) == sorted(
            [f"dead-{i}" for i in range(3)] + [f"new-{i}" for i in range(4)]
        )
        assert spool_files(spool) == [live] and writer.spool_size() == 2
    finally:
        os.close(held)  # the other replay died: its claim is free now
    assert writer.replay() == 2
    assert len(_stored(url)) == 9 and spool_files(spool) == []
    store.dispose()

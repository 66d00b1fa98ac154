"""The writer process collects reference cycles on a clock, with automatic collection off.

Its rows are acyclic and freed by reference counting; automatic collections only walked the
rows waiting in the queue (docs/performance.md). Cycles that do arise must still be collected.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

from trajops.monitoring.log_process import CycleCollector


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: reference counting alone never frees it


def test_cycles_are_collected_once_the_interval_has_passed() -> None:
    now = [100.0]
    collector = CycleCollector(1.0, clock=lambda: now[0])
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        collector.tick()
        now[0] += 0.9
        collector.tick()
        assert alive() is not None and collector.collections == 0  # not due yet
        now[0] += 0.1
        collector.tick()
        assert alive() is None and collector.collections == 1
        collector.tick()  # the next collection is an interval later
        assert collector.collections == 1
        now[0] += 1.0
        collector.tick()
        assert collector.collections == 2
    finally:
        if was_enabled:
            gc.enable()


_CHILD = textwrap.dedent(
    """
    import gc, os, sys, threading, time, weakref
    import orjson
    from trajops.monitoring import log_process

    class Node:
        def __init__(self):
            self.me = self

    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    config = {"database_url": sys.argv[1], "spool_dir": sys.argv[2], "writer": {},
              "gc_interval_s": float(sys.argv[3])}
    os.write(w_in, orjson.dumps(config) + b"\\n")
    done = []
    t = threading.Thread(
        target=lambda: done.append(log_process.serve(os.fdopen(r_in, "rb"), os.fdopen(w_out, "wb")))
    )
    t.start()
    time.sleep(1.0)  # started: the collection policy is set
    node = Node()
    alive = weakref.ref(node)
    del node
    time.sleep(1.0)
    print(gc.isenabled(), alive() is None, flush=True)
    os.close(w_in)
    t.join(30)
    print(done, flush=True)
    """
)


def _run_child(tmp_path: Path, interval_s: float) -> list[str]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(tmp_path / "spool"), str(interval_s)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


def test_the_writer_process_runs_without_automatic_collection_and_collects_cycles(
    tmp_path: Path,
) -> None:
    from trajops.store import Store

    Store(f"sqlite:///{tmp_path / 'ops.db'}").dispose()  # migrated, as the API process does
    lines = _run_child(tmp_path, 0.3)
    assert lines[0] == "False True"  # automatic collection off; the cycle collected anyway
    assert lines[1] == "[0]"  # exited cleanly at end of input
    lines = _run_child(tmp_path, 0.0)  # 0: automatic collection, as before (at a threshold
    assert lines[0].startswith("True ")  # this child's few allocations do not reach)

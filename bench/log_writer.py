"""CPU the log writer process spends per served request (one prediction row + one audit row).

Four measurements, each against its baseline in the same run:

* ``insert``: ``LogWriter._insert`` on the same batches (200 rows, half predictions, half
  chained audit rows) into fresh SQLite stores, with ``store.bulk.bulk_insert`` held on its
  Core fallback (Core statements, as the writer inserted before 2026-12-04) and on its
  driver-level path, interleaved over ``--rounds``; CPU µs per request.
* ``process``: ``python -m trajops.monitoring.log_process`` (through this script's
  ``--writer-child``, which sets the GC threshold and times the collections) fed over its
  pipe at each of ``--rates`` (requests/s, one write every hand-over interval, as the API's
  sender does), by 1 process and by 2 processes on one store (as at 2 API workers), in
  three variants interleaved over ``--rounds`` (``PROCESS_VARIANTS``): 50 ms group-commit
  windows fed every 20 ms with the young-generation GC threshold at 20,000 (the writer
  before 2026-12-06, 03:00 UTC), the same at ``log_process.GC_THRESHOLD`` (before
  2026-12-06, 07:00 UTC), and the writer now (``WriterConfig``'s windows and hand-overs);
  CPU µs per request read from ``/proc``, µs per request spent in garbage collections
  (``gc.callbacks``, from the first row on), and the processes' peak resident memory;
* ``ids``: ``LogWriter._insert`` into one SQLite store grown to ``--grow`` requests, in
  segments, with random request and audit record ids (the service before 2026-12-04, and any
  client that sends random ``X-Request-ID`` headers) and with time-ordered ones (UUIDv7, what the
  service makes now); CPU µs per request of each segment, the last segment compared.

* ``pipeline``: the writer process's path from pipe block to database in one thread, on
  the same requests: ``decode``, ``put_rows`` a block of 440 rows at a time (20 ms of rows at
  11k requests/s), transactions of ``PIPELINE_BATCH_ROWS`` (500) taken and inserted. Six
  variants (``PIPELINE_VARIANTS``), interleaved over ``--rounds``: the writer before
  2026-12-05 (``queue.Queue``, one lock round per row, and Python's default GC threshold),
  the writer of 2026-12-05 (``RowQueue``, one lock round per block, and a GC threshold of
  20,000; datetimes formatted by SQLAlchemy's SQLite processor and ``isoformat``, the audit
  chain's replay check an ``IN`` list), ``threshold_20k`` (datetimes through
  ``trajops._timetext.UtcText``, the replay check an index range: the writer of 2026-12-06
  morning), ``lists`` (the same at ``log_process.GC_THRESHOLD``, coordinates as JSON arrays
  in the lines), ``session_sql`` (coordinates as JSON text, ``trajops.store.json_text``;
  the audit chain's lock, head read and replay check through the session) and the writer now
  (those three as driver SQL); CPU µs per request. The same under
  ``valgrind --tool=callgrind`` (when it is installed): instructions per request, counted on
  1,000 and 3,000 requests and the difference divided by 2,000 (set-up cancels out).
  Instruction counts do not depend on what else the machine is doing, so they settle
  differences that its noise hides.

Rows are built the way the API builds them (``audit_row``, ``encode_row``). Writes
``bench/results/log_writer.json``.

Usage::

    .venv/bin/python bench/log_writer.py            # ~12 minutes
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from trajops._ids import ordered_hex, ordered_hex_ms, random_hex
from trajops.monitoring import log_process
from trajops.monitoring.log_process import GC_THRESHOLD
from trajops.security import audit as audit_module
from trajops.security.anonymise import stored_coordinates
from trajops.security.audit import AUDIT_HOOKS, audit_row
from trajops.store import bulk
from trajops.store.db import Store
from trajops.store.models import AuditEntry, PredictionRecord
from trajops.store.pipe_writer import encode_row, writer_process_env
from trajops.store.writer import LogWriter, Row, RowQueue, WriterConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _callgrind  # instruction counts
import serve  # the benches' results folder and writer (write_result)
import serve_cpu  # CPU time of a process from /proc

ROOT = serve.ROOT


def request_rows(
    n: int, seed: int = 0, *, ordered: bool = True, json_text: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """``n`` requests' rows as the API hands them over: a prediction row and an audit row.

    ``ordered``: request and audit record ids are time-ordered, as the service makes them;
    otherwise random (as a client's own random ``X-Request-ID`` would be). ``json_text``: the
    coordinates as JSON text (``stored_coordinates``, as the API encodes them since
    2026-12-06, 06:00 UTC); otherwise as nested lists (the API before)."""
    rng = np.random.default_rng(seed)
    make_id = ordered_hex if ordered else random_hex
    rows: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n):
        request_id = make_id()
        obs, pred = rng.normal(size=(1, 8, 2)) * 5, rng.normal(size=(1, 12, 2)) * 5
        if json_text:
            inputs, outputs = stored_coordinates(obs, 3)[0], stored_coordinates(pred, 3)[0]
        else:
            inputs, outputs = np.round(obs[0], 3).tolist(), np.round(pred[0], 3).tolist()
        rows.append(
            (
                "predictions",
                {
                    "request_id": request_id,
                    "created_at": datetime.now(UTC),
                    "model_name": "trajectory-forecaster",
                    "model_version": "1",
                    "variant": "default",
                    "agent_key": random_hex(),
                    "scene_key": None,
                    "inputs": inputs,
                    "outputs": outputs,
                    "step_s": 0.4,
                    "latency_ms": 0.4,
                },
            )
        )
        rows.append(
            (
                "audit_log",
                audit_row(
                    route="/v1/predict",
                    method="POST",
                    status=200,
                    latency_ms=0.6,
                    key_id=random_hex()[:12],
                    request_id=request_id,
                    model_version="1",
                    payload_digest=random_hex() * 2,
                    client_key=random_hex(),
                )
                | {"record_id": make_id()},
            )
        )
    return rows


_driver_plan = bulk._plan


def _no_plan(*_args: Any) -> None:
    return None


def bench_insert(requests: int, rounds: int, tmp: Path) -> dict[str, Any]:
    rows = request_rows(requests)
    batches = [rows[i : i + 200] for i in range(0, len(rows), 200)]
    per: dict[str, list[float]] = {"core": [], "bulk_insert": []}
    for r in range(rounds):
        for name in ("core", "bulk_insert"):
            store = Store(f"sqlite:///{tmp / f'insert-{name}-{r}.db'}")
            writer = LogWriter(store, tmp / "spool-unused", hooks=AUDIT_HOOKS)
            # "core": the same writer with bulk_insert held on its Core fallback (no plan)
            bulk._plan = _no_plan if name == "core" else _driver_plan  # type: ignore[assignment]
            started = time.process_time()
            for batch in batches:
                writer._insert(batch)
            per[name].append((time.process_time() - started) / requests * 1e6)
            store.dispose()
    bulk._plan = _driver_plan
    core, fast = (statistics.median(per[name]) for name in ("core", "bulk_insert"))
    result: dict[str, Any] = {
        "core_us_per_request": round(core, 1),
        "bulk_insert_us_per_request": round(fast, 1),
        "core_over_bulk_insert": round(core / fast, 2),
        "rounds": {name: [round(x, 1) for x in v] for name, v in per.items()},
    }
    print(
        f"  insert: core {core:.1f} us/request, bulk_insert {fast:.1f} us/request "
        f"({result['core_over_bulk_insert']}x)",
        flush=True,
    )
    return result


def bench_ids(total: int, segment: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """CPU µs per request of each ``segment`` while a store grows to ``total`` requests."""
    per: dict[str, list[list[float]]] = {"random": [], "ordered": []}
    for r in range(rounds):
        for name in per:  # interleaved: drift hits both alike
            store = Store(f"sqlite:///{tmp / f'ids-{name}-{r}.db'}")
            writer = LogWriter(store, tmp / "spool-unused", hooks=AUDIT_HOOKS)
            segments: list[float] = []
            for start in range(0, total, segment):
                rows = request_rows(segment, seed=start, ordered=name == "ordered")
                began = time.process_time()
                for i in range(0, len(rows), 400):  # 200 requests per transaction
                    writer._insert(rows[i : i + 400])
                segments.append((time.process_time() - began) / segment * 1e6)
            per[name].append(segments)
            store.dispose()
    random_last, ordered_last = (
        statistics.median(s[-1] for s in per[name]) for name in ("random", "ordered")
    )
    result: dict[str, Any] = {
        "store_grown_to_requests": total,
        "segment_requests": segment,
        "random_last_segment_us_per_request": round(random_last, 1),
        "ordered_last_segment_us_per_request": round(ordered_last, 1),
        "random_over_ordered": round(random_last / ordered_last, 2),
        "segments": {name: [[round(x, 1) for x in s] for s in runs] for name, runs in per.items()},
    }
    print(
        f"  ids, store grown to {total} requests: random {random_last:.1f} us/request, "
        f"ordered {ordered_last:.1f} us/request ({result['random_over_ordered']}x)",
        flush=True,
    )
    return result


class PerRowQueue:
    """The writer's queue before ``RowQueue``: a ``queue.Queue``, one lock round per row."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[Row] = queue.Queue(maxsize)

    def __len__(self) -> int:
        return self._queue.qsize()

    def put(self, rows: list[Row]) -> None:
        for row in rows:
            self._queue.put(row)

    def take(self, most: int, timeout: float = 0.0) -> list[Row]:
        """Up to ``most`` rows without waiting (the bench's single thread never waits)."""
        batch: list[Row] = []
        while len(batch) < most:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch


class PipelineVariant(NamedTuple):
    queue: type[Any]
    gc_threshold: int
    timetext: bool
    """The datetime and replay-check changes of 2026-12-06 (``_use_timetext_and_ranges``)."""
    json_text: bool
    """Coordinates as JSON text in the lines (the API since 2026-12-06, 06:00 UTC)."""
    driver_sql: bool
    """The audit chain's per-batch statements as driver SQL (since 2026-12-06, 06:30 UTC)."""


PIPELINE_VARIANTS = {
    "before_2026_12_05": PipelineVariant(PerRowQueue, 700, False, False, False),
    "before_2026_12_06": PipelineVariant(RowQueue, 20_000, False, False, False),
    "threshold_20k": PipelineVariant(RowQueue, 20_000, True, False, False),
    "lists": PipelineVariant(RowQueue, GC_THRESHOLD, True, False, False),
    "session_sql": PipelineVariant(RowQueue, GC_THRESHOLD, True, True, False),
    "now": PipelineVariant(RowQueue, GC_THRESHOLD, True, True, True),
}
PIPELINE_BATCH_ROWS = 500
"""Rows per transaction in ``pipeline``: 100 ms of rows (``WriterConfig.gather_s``) at
2,500 requests/s, one writer process's share at 2 API workers."""


def pipeline_lines(variant: str, requests: int, seed: int) -> list[bytes]:
    """``requests`` requests' lines in the form ``variant``'s API process sent them."""
    json_text = PIPELINE_VARIANTS[variant].json_text
    return [encode_row(t, r) for t, r in request_rows(requests, seed=seed, json_text=json_text)]


class _NoUtcText:
    """Stands in for ``UtcText``: formats nothing, so the general formatters run."""

    def __init__(self, *_args: Any) -> None:
        pass

    def __call__(self, _moment: object) -> None:
        return None


def _use_timetext_and_ranges(on: bool) -> None:
    """Switch the 2026-12-06 changes of the writer's path on or off (the bench's process)."""
    bulk.UtcText = bulk_utc_text if on else _NoUtcText  # type: ignore[misc,assignment]
    bulk._plans.clear()  # plans hold their processors
    audit_module._ZULU = audit_zulu if on else _NoUtcText()  # type: ignore[assignment]
    audit_module._RANGE_SPAN_MS = range_span_ms if on else -1  # -1: always the IN list


bulk_utc_text = bulk.UtcText
audit_zulu = audit_module._ZULU
range_span_ms = audit_module._RANGE_SPAN_MS


def _session_lock_chain(session: Session) -> None:
    """``audit.lock_chain`` before 2026-12-06, 06:30 UTC: a ``text`` statement in the session."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit_module.LOCK_ID})
    else:
        session.execute(text("UPDATE audit_anchors SET id = id WHERE 1 = 0"))


def _session_chain_head(session: Session) -> tuple[int, str]:
    """``audit.chain_head`` before 2026-12-06, 06:30 UTC (rows exist: no anchor lookup)."""
    head = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    return (int(head[0]), str(head[1])) if head is not None else (0, audit_module.GENESIS)


def _session_stored_ids(session: Session, wanted: set[str]) -> set[str]:
    """``audit._stored_ids`` before 2026-12-06, 06:30 UTC: the range read through the session."""
    low, high = min(wanted), max(wanted)
    start, end = ordered_hex_ms(low), ordered_hex_ms(high)
    column = AuditEntry.record_id
    if start is not None and end is not None and end - start <= audit_module._RANGE_SPAN_MS:
        return wanted.intersection(session.scalars(select(column).where(column.between(low, high))))
    return set(session.scalars(select(column).where(column.in_(wanted))))


_DRIVER_SQL = (audit_module.lock_chain, audit_module.chain_head, audit_module._stored_ids)
_SESSION_SQL = (_session_lock_chain, _session_chain_head, _session_stored_ids)


def _use_driver_sql(on: bool) -> None:
    """The audit chain's per-batch statements as driver SQL (now) or through the session."""
    (
        audit_module.lock_chain,  # type: ignore[misc]
        audit_module.chain_head,  # type: ignore[misc]
        audit_module._stored_ids,  # type: ignore[misc]
    ) = _DRIVER_SQL if on else _SESSION_SQL


def pipeline_once(lines: list[bytes], variant: str, tmp: Path, tag: str) -> float:
    """CPU µs per request of decoding, queueing and inserting ``lines`` (two per request)."""
    chosen = PIPELINE_VARIANTS[variant]
    _use_timetext_and_ranges(chosen.timetext)
    _use_driver_sql(chosen.driver_sql)
    store = Store(f"sqlite:///{tmp / f'pipeline-{tag}.db'}")
    config = WriterConfig(batch_size=PIPELINE_BATCH_ROWS)
    writer = LogWriter(store, tmp / "spool-unused", config, hooks=AUDIT_HOOKS)
    writer._queue = chosen.queue(writer.config.queue_size)
    saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(chosen.gc_threshold, *saved[1:])
    try:
        started = time.process_time()
        for start in range(0, len(lines), 440):
            writer.put_rows([writer.decode(line) for line in lines[start : start + 440]])
            if writer.pending >= PIPELINE_BATCH_ROWS or start + 440 >= len(lines):
                while batch := writer._drain([]):
                    writer._insert(batch)
        spent = time.process_time() - started
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
        store.dispose()
        _use_timetext_and_ranges(True)
        _use_driver_sql(True)
    return spent / (len(lines) // 2) * 1e6


def bench_pipeline(requests: int, rounds: int, tmp: Path) -> dict[str, Any]:
    lines = {name: pipeline_lines(name, requests, seed=2) for name in PIPELINE_VARIANTS}
    per: dict[str, list[float]] = {name: [] for name in PIPELINE_VARIANTS}
    for r in range(rounds):
        for name in per:  # interleaved: drift hits every variant alike
            per[name].append(pipeline_once(lines[name], name, tmp, f"{name}-{r}"))
    medians = {name: statistics.median(v) for name, v in per.items()}
    result: dict[str, Any] = {
        "rows_per_transaction": PIPELINE_BATCH_ROWS,
        "us_per_request": {name: round(m, 1) for name, m in medians.items()},
        "over_now": {name: round(m / medians["now"], 2) for name, m in medians.items()},
        "rounds": {name: [round(x, 1) for x in v] for name, v in per.items()},
    }
    print(
        "  pipeline: "
        + ", ".join(f"{name} {m:.1f}" for name, m in medians.items())
        + f" us/request ({result['over_now']['lists']}x the lists', "
        + f"{result['over_now']['session_sql']}x the session SQL's)",
        flush=True,
    )
    return result


def callgrind_child(variant: str, requests: int) -> None:
    """Under callgrind: the pipeline of ``variant`` on ``requests`` requests, with only
    ``pipeline_once`` instrumented (``callgrind_control`` switches it on and off)."""
    with tempfile.TemporaryDirectory(prefix="trajops-bench-cg-") as tmp_name:
        tmp = Path(tmp_name)
        warm = pipeline_lines(variant, 300, seed=1)
        pipeline_once(warm, variant, tmp, "warm")  # plans compiled, caches filled
        lines = pipeline_lines(variant, requests, seed=2)
        with _callgrind.counting():
            pipeline_once(lines, variant, tmp, "counted")


def bench_pipeline_instructions(tmp: Path) -> dict[str, Any] | None:
    """Instructions per request of each pipeline variant, or None without valgrind."""
    if not _callgrind.available():
        print("  pipeline instructions: skipped (valgrind is not installed)", flush=True)
        return None
    per: dict[str, int] = {}
    for name in PIPELINE_VARIANTS:
        argv = {
            n: [sys.executable, __file__, "--callgrind-child", name, str(n)]
            for n in _callgrind.SIZES
        }
        per[name] = _callgrind.per_request(argv, tmp, name)
    over_now = {name: round(n / per["now"], 3) for name, n in per.items()}
    result = {
        "instructions_per_request": per,
        "over_now": over_now,
        "method": "callgrind, (instructions for 3000 requests - for 1000) / 2000",
    }
    print(
        "  pipeline instructions: "
        + ", ".join(f"{name} {n:,}" for name, n in per.items())
        + f" per request ({over_now['lists']}x the lists', "
        + f"{over_now['session_sql']}x the session SQL's)",
        flush=True,
    )
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a writer process (alive until the measurement ends)."""
    used = serve_cpu.cpu_seconds(pid)
    if used is None:
        raise SystemExit(f"writer process {pid} exited during the measurement")
    return sum(used)


def _peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a process so far (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM for process {pid}")


PROCESS_VARIANTS = {  # name: (gather_s, handover_s, young-generation GC threshold)
    "threshold_20k": (0.05, 0.02, 20_000),
    "windows_50ms": (0.05, 0.02, GC_THRESHOLD),
    "now": (WriterConfig().gather_s, WriterConfig().handover_s, GC_THRESHOLD),
}
"""``threshold_20k``: GC threshold 20,000 (before 2026-12-06, 03:00 UTC); ``windows_50ms``:
group-commit windows of 50 ms fed every 20 ms (before 2026-12-06, 07:00 UTC); ``now``."""


def writer_child(threshold: int) -> None:
    """A writer process (``log_process.main``) with young-generation GC threshold
    ``threshold`` that also times its garbage collections, from its first row to its exit;
    prints ``{"gc_s", "collections"}`` to stderr as it exits."""
    timed = {"on": False, "gc_s": 0.0, "collections": 0, "started": 0.0}

    def timing(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            timed["started"] = time.perf_counter() if timed["on"] else 0.0
        elif timed["started"]:
            timed["gc_s"] += time.perf_counter() - timed["started"]
            timed["collections"] += 1

    put_rows = LogWriter.put_rows

    def put_rows_timed(self: LogWriter, rows: Iterable[Row]) -> None:
        rows = list(rows)
        timed["on"] = timed["on"] or bool(rows)
        put_rows(self, rows)

    log_process.GC_THRESHOLD = threshold
    gc.callbacks.append(timing)
    LogWriter.put_rows = put_rows_timed  # type: ignore[method-assign]
    try:
        log_process.main()
    finally:
        print(json.dumps({"gc_s": timed["gc_s"], "collections": timed["collections"]}),
              file=sys.stderr, flush=True)  # fmt: skip


def bench_process(
    *, processes: int, variant: str, rate: int, requests: int, tmp: Path, tag: str
) -> tuple[float, float, float]:
    """CPU µs per request of ``processes`` writer processes fed ``rate`` requests/s in all,
    their largest peak resident memory (MiB), and the µs per request they spent in garbage
    collections."""
    gather_s, handover_s, threshold = PROCESS_VARIANTS[variant]
    url = f"sqlite:///{tmp / f'process-{tag}.db'}"
    Store(url).dispose()  # migrated, as the API process does before starting writers
    config = WriterConfig(batch_size=1000, gather_s=gather_s)  # the service's batch size
    first = json.dumps(
        {
            "database_url": url,
            "spool_dir": str(tmp / f"spool-{tag}"),
            "writer": asdict(config),
        }
    ).encode()
    lines = [encode_row(t, r) for t, r in request_rows(requests, seed=1)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--writer-child", str(threshold)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=writer_process_env(),
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(first + b"\n")
        proc.stdin.flush()
    time.sleep(3.0)  # start-up (imports) is not part of the per-request cost
    before = sum(_cpu_seconds(p.pid) for p in procs)
    per_send = max(1, int(rate * handover_s))  # as the API's sender hands rows over
    started = time.perf_counter()
    sent = 0
    while sent < requests:
        chunk = lines[2 * sent : 2 * (sent + per_send)]
        stdin = procs[(sent // per_send) % processes].stdin
        assert stdin is not None
        stdin.write(b"".join(chunk))
        stdin.flush()
        sent += len(chunk) // 2
        time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    time.sleep(1.5)  # the last batches are inserted
    spent = sum(_cpu_seconds(p.pid) for p in procs) - before
    peak = max(_peak_rss_mib(p.pid) for p in procs)
    gc_s = 0.0
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(60)
    for proc in procs:
        assert proc.stderr is not None
        gc_s += json.loads(proc.stderr.read().decode().strip().splitlines()[-1])["gc_s"]
    with Store(url, run_migrations=False).session() as session:
        stored = session.query(PredictionRecord).count(), session.query(AuditEntry).count()
    if stored != (requests, requests):
        raise SystemExit(f"writer processes stored {stored}, expected {requests} of each")
    return spent / requests * 1e6, peak, gc_s / requests * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per measurement")
    parser.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=[4000, 9000],
        help="requests/s fed to the writers (the process measurement runs at each)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="repeats of every measurement")
    parser.add_argument(
        "--grow", type=int, default=200_000, help="requests the ids measurement's store grows to"
    )
    parser.add_argument("--callgrind-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--writer-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer_child is not None:
        writer_child(args.writer_child)
        return
    if args.callgrind_child:
        callgrind_child(args.callgrind_child[0], int(args.callgrind_child[1]))
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="trajops-bench-writer-") as tmp_name:
        tmp = Path(tmp_name)
        insert_result = bench_insert(args.requests, args.rounds, tmp)
        ids_result = bench_ids(args.grow, args.requests, max(1, args.rounds - 1), tmp)
        pipeline_result = bench_pipeline(args.requests, args.rounds + 2, tmp)
        pipeline_result["instructions"] = bench_pipeline_instructions(tmp)
        process: list[dict[str, Any]] = []
        for rate, processes in itertools.product(args.rates, (1, 2)):
            samples: dict[str, list[float]] = {name: [] for name in PROCESS_VARIANTS}
            peaks: dict[str, list[float]] = {name: [] for name in PROCESS_VARIANTS}
            gc_us: dict[str, list[float]] = {name: [] for name in PROCESS_VARIANTS}
            for r in range(args.rounds):
                for name in samples:  # interleaved: drift hits every variant alike
                    us, peak, gc_cost = bench_process(
                        processes=processes,
                        variant=name,
                        rate=rate,
                        requests=args.requests,
                        tmp=tmp,
                        tag=f"{rate}-{processes}-{name}-{r}",
                    )
                    samples[name].append(us)
                    peaks[name].append(peak)
                    gc_us[name].append(gc_cost)
            medians = {name: statistics.median(v) for name, v in samples.items()}
            row = {
                "processes": processes,
                "rate_rps": rate,
                "us_per_request": {name: round(m, 1) for name, m in medians.items()},
                "over_now": {name: round(m / medians["now"], 2) for name, m in medians.items()},
                "gc_us_per_request": {
                    name: round(statistics.median(v), 2) for name, v in gc_us.items()
                },
                "peak_rss_mib": {name: round(max(v), 1) for name, v in peaks.items()},
                "rounds": {name: [round(x, 1) for x in v] for name, v in samples.items()},
                "gc_rounds": {name: [round(x, 2) for x in v] for name, v in gc_us.items()},
            }
            print(
                f"  process x{processes} at {rate} req/s: "
                + ", ".join(f"{name} {m:.1f}" for name, m in medians.items())
                + " us/request; in GC "
                + ", ".join(f"{name} {m:.2f}" for name, m in row["gc_us_per_request"].items())
                + " us/request; peak RSS "
                + ", ".join(f"{name} {m:.0f}" for name, m in row["peak_rss_mib"].items())
                + " MiB",
                flush=True,
            )
            process.append(row)
    result = {
        "command": "python bench/log_writer.py",
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "unit": "CPU microseconds per request (one prediction row + one audit row), median of rounds",
        "requests": args.requests,
        "insert": insert_result,
        "ids": ids_result,
        "pipeline": pipeline_result,
        "process": process,
    }
    out = serve.write_result("log_writer.json", result)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

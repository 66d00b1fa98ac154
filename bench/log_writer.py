"""CPU the log writer process spends per served request (one prediction row + one audit row).

Three measurements, each against its baselines in the same run:

* ``ids``: ``LogWriter._insert`` into one SQLite store grown to ``--grow`` requests, in
  segments, with random request and audit record ids (any client that sends random
  ``X-Request-ID`` headers) and with time-ordered ones (UUIDv7, what the service makes); CPU µs
  per request of each segment, the last segment compared.
* ``pipeline``: the writer process's path from the write-ahead log to the database in one
  thread, on the same requests: ``decode``, ``put_rows`` a block of 440 rows at a time (what
  the log's tailer reads after 20 ms at 11k requests/s), transactions of
  ``PIPELINE_BATCH_ROWS`` (500) taken and inserted. The writer
  now against one variant per hand-written choice it makes (``PIPELINE_VARIANTS``),
  interleaved over ``--rounds``: ``queue_queue`` (a ``queue.Queue``, one lock round per row,
  instead of ``RowQueue``), ``gc_700`` (Python's default young-generation GC threshold instead
  of ``GC_THRESHOLD``) and ``session_sql`` (the audit chain's lock, head read and replay check
  through the ORM session instead of driver SQL); CPU µs per request.
* ``process``: ``python -m trajops.logpipe.process`` (through this script's
  ``--writer-child``, which sets the GC threshold and times the collections) tailing a
  write-ahead log (``trajops.logpipe.wal.Wal``, fsynced, one append per request as the API
  makes) fed at each of ``--rates`` (requests/s), by 1 process and by 2 processes on one store
  (a log and a writer per API worker, as at 2 workers), in three variants interleaved over
  ``--rounds`` (``PROCESS_VARIANTS``): the young-generation GC threshold at 20,000,
  group-commit windows of 50 ms, and the writer now; CPU µs per request (the processes' whole
  CPU from the end of their start-up to their exit, rows drained), µs per request spent in
  garbage collections (``gc.callbacks``, from the first row on), and the processes' peak
  resident memory.

Rows are built the way the API builds them (``audit_row``, ``stored_coordinates``,
``encode_row``). Writes ``bench/results/log_writer.json``.

Usage::

    .venv/bin/python bench/log_writer.py            # ~10 minutes
    .venv/bin/python bench/log_writer.py --requests 2000 --rounds 1 --grow 4000 --rates 2000
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
from trajops.logpipe import process as writer_process
from trajops.logpipe.lines import Row, encode_row
from trajops.logpipe.process import GC_THRESHOLD
from trajops.logpipe.wal import Wal
from trajops.logpipe.writer import LogWriter, RowQueue, WriterConfig
from trajops.security import audit_chain
from trajops.security.anonymise import stored_coordinates
from trajops.security.audit import AUDIT_HOOKS, audit_row
from trajops.store.db import Store
from trajops.store.models import AuditEntry, PredictionRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # the benches' results folder and writer (write_result)
import serve_cpu  # CPU time of a process from /proc

ROOT = serve.ROOT


def request_rows(n: int, seed: int = 0, *, ordered: bool = True) -> list[Row]:
    """``n`` requests' rows as the API hands them over: a prediction row and an audit row.

    ``ordered``: request and audit record ids are time-ordered, as the service makes them;
    otherwise random (as a client's own random ``X-Request-ID`` would be)."""
    rng = np.random.default_rng(seed)
    make_id = ordered_hex if ordered else random_hex
    rows: list[Row] = []
    for _ in range(n):
        request_id = make_id()
        obs = rng.normal(size=(1, 8, 2)) * 5  # (N, T_obs, 2)
        pred = rng.normal(size=(1, 12, 2)) * 5  # (N, T_pred, 2)
        inputs, outputs = stored_coordinates(obs, 3)[0], stored_coordinates(pred, 3)[0]
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
    driver_sql: bool
    """The audit chain's per-batch statements as driver SQL (``security.audit_chain``)."""


PIPELINE_VARIANTS = {
    "queue_queue": PipelineVariant(PerRowQueue, GC_THRESHOLD, True),
    "gc_700": PipelineVariant(RowQueue, 700, True),
    "session_sql": PipelineVariant(RowQueue, GC_THRESHOLD, False),
    "now": PipelineVariant(RowQueue, GC_THRESHOLD, True),
}
"""The writer now, and one variant per hand-written choice, each undoing that choice alone."""
PIPELINE_BATCH_ROWS = 500
"""Rows per transaction in ``pipeline``: 100 ms of rows (``WriterConfig.gather_s``) at
2,500 requests/s, one writer process's share at 2 API workers."""


def pipeline_lines(requests: int, seed: int) -> list[bytes]:
    """``requests`` requests' lines as the API process writes them to its log."""
    return [encode_row(t, r) for t, r in request_rows(requests, seed=seed)]


def _session_lock_chain(session: Session) -> None:
    """``audit_chain.lock_chain`` as a ``text`` statement through the session."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit_chain.LOCK_ID})
    else:
        session.execute(text("UPDATE audit_anchors SET id = id WHERE 1 = 0"))


def _session_chain_head(session: Session) -> tuple[int, str]:
    """``audit_chain.chain_head`` through the session."""
    head = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if head is not None:
        return int(head[0]), str(head[1])
    anchor = audit_chain.latest_anchor(session)
    if anchor is not None:
        return int(anchor.last_purged_id), anchor.last_purged_hash
    return 0, audit_chain.GENESIS


def _session_stored_ids(session: Session, wanted: set[str]) -> set[str]:
    """``audit_chain._stored_ids`` with the range read through the session."""
    low, high = min(wanted), max(wanted)
    start, end = ordered_hex_ms(low), ordered_hex_ms(high)
    column = AuditEntry.record_id
    if start is not None and end is not None and end - start <= audit_chain._RANGE_SPAN_MS:
        return wanted.intersection(session.scalars(select(column).where(column.between(low, high))))
    return set(session.scalars(select(column).where(column.in_(wanted))))


_DRIVER_SQL = (audit_chain.lock_chain, audit_chain.chain_head, audit_chain._stored_ids)
_SESSION_SQL = (_session_lock_chain, _session_chain_head, _session_stored_ids)


def _use_driver_sql(on: bool) -> None:
    """The audit chain's per-batch statements as driver SQL (now) or through the session."""
    (
        audit_chain.lock_chain,  # type: ignore[misc]
        audit_chain.chain_head,  # type: ignore[misc]
        audit_chain._stored_ids,  # type: ignore[misc]
    ) = _DRIVER_SQL if on else _SESSION_SQL


def pipeline_once(lines: list[bytes], variant: str, tmp: Path, tag: str) -> float:
    """CPU µs per request of decoding, queueing and inserting ``lines`` (two per request)."""
    chosen = PIPELINE_VARIANTS[variant]
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
            writer.put_rows([writer.decode_rows(line) for line in lines[start : start + 440]])
            if writer.pending >= PIPELINE_BATCH_ROWS or start + 440 >= len(lines):
                while batch := writer._drain([]):
                    writer._insert(batch)
        spent = time.process_time() - started
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
        store.dispose()
        _use_driver_sql(True)
    return spent / (len(lines) // 2) * 1e6


def bench_pipeline(requests: int, rounds: int, tmp: Path) -> dict[str, Any]:
    lines = pipeline_lines(requests, seed=2)
    pipeline_once(pipeline_lines(300, seed=1), "now", tmp, "warm")  # statements compiled
    per: dict[str, list[float]] = {name: [] for name in PIPELINE_VARIANTS}
    for r in range(rounds):
        for name in per:  # interleaved: drift hits every variant alike
            per[name].append(pipeline_once(lines, name, tmp, f"{name}-{r}"))
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
        + " us/request; over now: "
        + ", ".join(f"{name} {x}x" for name, x in result["over_now"].items() if name != "now"),
        flush=True,
    )
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a writer process so far (alive at the time)."""
    used = serve_cpu.cpu_seconds(pid)
    if used is None:
        raise SystemExit(f"writer process {pid} exited during its start-up")
    return sum(used)


PROCESS_VARIANTS = {  # name: (gather_s, young-generation GC threshold)
    "threshold_20k": (WriterConfig().gather_s, 20_000),
    "windows_50ms": (0.05, GC_THRESHOLD),
    "now": (WriterConfig().gather_s, GC_THRESHOLD),
}
"""``threshold_20k``: the writer process's GC threshold at 20,000 (before 2026-12-06, 03:00
UTC); ``windows_50ms``: group-commit windows of 50 ms (before 2026-12-06, 07:00 UTC); ``now``."""
FEED_TICK_S = 0.005
"""The bench appends the requests of each 5 ms to the write-ahead logs, one append per
request (as the API does), then sleeps to the next tick."""


def writer_child(threshold: int) -> None:
    """A writer process (``trajops.logpipe.process.main``) with young-generation GC threshold
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

    def put_rows_timed(self: LogWriter, groups: Iterable[list[Row]]) -> None:
        groups = list(groups)
        timed["on"] = timed["on"] or any(groups)
        put_rows(self, groups)

    writer_process.GC_THRESHOLD = threshold
    gc.callbacks.append(timing)
    LogWriter.put_rows = put_rows_timed  # type: ignore[method-assign]
    try:
        writer_process.main()
    finally:
        print(json.dumps({"gc_s": timed["gc_s"], "collections": timed["collections"]}),
              file=sys.stderr, flush=True)  # fmt: skip


def bench_process(
    *, processes: int, variant: str, rate: int, requests: int, tmp: Path, tag: str
) -> tuple[float, float, float]:
    """CPU µs per request of ``processes`` writer processes fed ``rate`` requests/s in all
    through write-ahead logs (one each, as one per API worker), their largest peak resident
    memory (MiB), and the µs per request they spent in garbage collections."""
    gather_s, threshold = PROCESS_VARIANTS[variant]
    url = f"sqlite:///{tmp / f'process-{tag}.db'}"
    Store(url).dispose()  # migrated, as the API process does before starting writers
    config = WriterConfig(batch_size=1000, gather_s=gather_s)  # the service's batch size
    rows = request_rows(requests, seed=1)
    lines = [encode_row(*rows[i]) + encode_row(*rows[i + 1]) for i in range(0, len(rows), 2)]
    wals = [Wal(tmp / f"wal-{tag}", fsync=True) for _ in range(processes)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    for i, wal in enumerate(wals):
        first = json.dumps(
            {
                "database_url": url,
                "spool_dir": str(tmp / f"spool-{tag}"),
                "wal_dir": str(wal.dir),
                "writer": asdict(config),
            }
        ).encode()
        logs.append(tmp / f"writer-{tag}-{i}.log")
        with logs[-1].open("wb") as err:  # a file: a full stderr pipe would stall the child
            proc = subprocess.Popen(
                [sys.executable, __file__, "--writer-child", str(threshold)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        assert proc.stdin is not None
        proc.stdin.write(first + b"\n")
        proc.stdin.flush()
        procs.append(proc)
    time.sleep(3.0)  # start-up (imports) is not part of the per-request cost
    before = sum(_cpu_seconds(p.pid) for p in procs)
    per_tick = max(1, round(rate * FEED_TICK_S))
    started = time.perf_counter()
    sent = 0
    while sent < requests:
        for i in range(sent, min(requests, sent + per_tick)):
            wals[i % processes].append(lines[i], 2)  # requests alternate between workers
        sent = min(requests, sent + per_tick)
        time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    for wal in wals:
        wal.close()  # the writer processes store what is left, then exit
    spent = peak_kib = 0.0
    for proc, log in zip(procs, logs, strict=True):
        assert proc.stdin is not None
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's whole CPU and peak memory
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"writer process exited with {proc.returncode}: {log.read_text()}")
        spent += usage.ru_utime + usage.ru_stime
        peak_kib = max(peak_kib, usage.ru_maxrss)
    gc_s = sum(json.loads(log.read_text().strip().splitlines()[-1])["gc_s"] for log in logs)
    with Store(url, run_migrations=False).session() as session:
        stored = session.query(PredictionRecord).count(), session.query(AuditEntry).count()
    if stored != (requests, requests):
        raise SystemExit(f"writer processes stored {stored}, expected {requests} of each")
    return (spent - before) / requests * 1e6, peak_kib / 1024, gc_s / requests * 1e6


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
    parser.add_argument("--writer-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer_child is not None:
        writer_child(args.writer_child)
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="trajops-bench-writer-") as tmp_name:
        tmp = Path(tmp_name)
        ids_result = bench_ids(args.grow, args.requests, max(1, args.rounds - 1), tmp)
        pipeline_result = bench_pipeline(args.requests, args.rounds + 2, tmp)
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
        "ids": ids_result,
        "pipeline": pipeline_result,
        "process": process,
    }
    out = serve.write_result("log_writer.json", result)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

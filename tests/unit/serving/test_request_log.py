"""Back-pressure on the log writer: requests wait (asynchronously) while it is behind, instead
of spooling with an fsync on the event loop, and pass as soon as it catches up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from trajops.logpipe import LogWriter
from trajops.logpipe.writer import WriterConfig
from trajops.monitoring.metrics import ServingMetrics
from trajops.security.audit import AUDIT_HOOKS, AuditRecord, audit_rows
from trajops.serving.request_log import LogBackpressure
from trajops.store import Store


def test_waits_while_behind_then_passes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ops.db'}")
    writer = LogWriter(store, tmp_path / "spool", WriterConfig(queue_size=100), hooks=AUDIT_HOOKS)
    metrics = ServingMetrics()
    gate = LogBackpressure(writer, metrics, high=0.1, max_wait_s=0.3)
    rows = audit_rows([AuditRecord(route="/x", method="GET", status=200) for _ in range(50)])
    writer.submit("audit_log", rows)  # 50 queued, writer not started: it is "behind"

    async def scenario() -> tuple[float, float]:
        t0 = time.monotonic()
        await gate.wait()  # gives up after max_wait_s, the rows are still queued
        stalled = time.monotonic() - t0
        writer.start()
        t1 = time.monotonic()
        await gate.wait()  # the writer drains the queue: passes well before max_wait_s
        return stalled, time.monotonic() - t1

    try:
        stalled, passed = asyncio.run(scenario())
    finally:
        writer.close()
        store.dispose()
    assert 0.3 <= stalled < 1.0
    assert passed < 0.3
    assert writer.spooled == 0 and writer.written == 50
    waited = metrics.registry.get_sample_value("trajops_log_backpressure_seconds_total")
    assert waited is not None and waited >= 0.29
    idle = LogBackpressure(writer, ServingMetrics())
    t0 = time.monotonic()
    asyncio.run(idle.wait())
    assert time.monotonic() - t0 < 0.05, "an idle writer costs nothing"


def test_the_service_checkpoints_the_audit_chain_outside_the_store(tmp_path: Path) -> None:
    """A serving process writes signed checkpoints of the chain's head on its own."""
    from tests._support.api_keys import issue_key
    from tests._support.app_fixtures import make_settings
    from tests._support.registry import build_registry
    from tests._support.waiting import eventually
    from trajops.security.audit_anchors import AnchorLog
    from trajops.serving import AppOptions, create_app, serve_in_thread

    registry = build_registry(tmp_path / "registry", versions=1)
    settings = make_settings(registry, tmp_path / "home", audit_anchor_interval_s=0.2)
    _, token = issue_key(settings, scopes="admin")
    anchors = AnchorLog.from_settings(settings)
    app = create_app(settings, options=AppOptions(poll=False, freeze_gc=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(5):
            assert http.get("/v1/models", headers={"X-API-Key": token}).status_code == 200
        last = eventually(anchors.last, lambda c: c is not None and c.id >= 5, timeout_s=20)
    assert last is not None and last.id >= 5

"""The audit edge: every HTTP request becomes one hash-chained audit row, off the hot path.

:class:`RequestAuditor` is called by :class:`~trajops.serving.middleware.ServingMiddleware`
once the response has been sent (whatever the status: 2xx, 401, 404, 413, 500). It builds an
audit row (:func:`~trajops.security.audit.audit_row`) from what the request left in its ASGI
scope and hands it to the monitor's lossless log writer, which chains and inserts it (or spools
it while the store is down). The per-request cost is a few microseconds: one random id, one
sha256 of the body, one encoded line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.types import Scope

from trajops.security.audit import audit_row, digest_payload
from trajops.serving.middleware import BODY_KEY, KEY_ID_KEY, MODEL_VERSION_KEY, REQUEST_ID_KEY

if TYPE_CHECKING:
    from trajops.monitoring.service import Monitor
    from trajops.serving.metrics import ServingMetrics
    from trajops.store.writer import LogSink

log = logging.getLogger(__name__)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LogBackpressure:
    """Slows requests down, asynchronously and in arrival order, while the log writer is behind.

    The writer's queue is bounded; when it is full, ``submit`` spools the overflow to disk with
    an fsync on the caller's thread, i.e. on the event loop, once per request: under sustained
    overload that turns into second-long stalls. Instead, while the queue is above ``high`` of
    its capacity, requests line up behind an ``asyncio.Lock`` (FIFO) and pass one by one as the
    writer makes room (the loop keeps running meanwhile); a request waits at most
    ``max_wait_s``, then its rows are queued or spooled anyway.

    Args:
        writer: the monitor's log writer.
        metrics: where waited seconds are counted (``trajops_log_backpressure_seconds_total``).
        high: queue share above which requests wait.
        max_wait_s: longest wait of one request.
    """

    def __init__(
        self,
        writer: LogSink,
        metrics: ServingMetrics,
        *,
        high: float = 0.1,
        max_wait_s: float = 2.0,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.high = int(writer.config.queue_size * high)
        self.max_wait_s = max_wait_s
        self._line = asyncio.Lock()

    def behind(self) -> bool:
        """Whether a request must :meth:`wait` (checked without creating a coroutine)."""
        return self.writer.pending >= self.high or self._line.locked()

    async def wait(self) -> None:
        """Return at once unless the writer is behind or others wait (no queue jumping)."""
        if not self.behind():
            return
        t0 = time.monotonic()
        deadline = t0 + self.max_wait_s
        async with self._line:
            while self.writer.pending >= self.high and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
        self.metrics.log_backpressure.inc(time.monotonic() - t0)


class RequestAuditor:
    """Turns finished requests into audit rows queued on ``monitor.writer``."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.failures = 0
        self._clients: dict[str, str] = {}

    def __call__(self, scope: Scope, *, status: int, seconds: float) -> None:
        """Queue the audit row of one finished request; never raises (a lost audit row is
        logged, and the writer itself never loses a queued row)."""
        try:
            route = scope.get("route")
            body: bytes | None = scope.get(BODY_KEY)
            client = scope.get("client")
            row = audit_row(
                route=getattr(route, "path", None) or scope["path"],
                method=scope["method"],
                status=status,
                latency_ms=seconds * 1e3,
                key_id=scope.get(KEY_ID_KEY),
                request_id=scope.get(REQUEST_ID_KEY) or _header(scope, b"x-request-id"),
                model_version=scope.get(MODEL_VERSION_KEY),
                payload_digest=digest_payload(body) if body else None,
                # pseudonymised once per address (an HMAC per request adds up)
                client_key=self._client_key(client[0]) if client else None,
            )
            self.monitor.writer.submit("audit_log", [row])
        except Exception:  # auditing must never break the response already sent
            self.failures += 1
            log.exception("audit record of %s %s not queued", scope.get("method"), scope["path"])

    def _client_key(self, address: str) -> str:
        key = self._clients.get(address)
        if key is None:
            if len(self._clients) >= 65_536:  # addresses come from the network: bounded
                self._clients.clear()
            key = self._clients[address] = self.monitor.pseudonymise(address, namespace="client")
        return key

"""The request log at the edge: one hash-chained audit row per request, and back-pressure.

:class:`RequestAuditor` is called by :class:`~trajops.serving.middleware.ServingMiddleware`
as the response starts (whatever the status: 2xx, 401, 404, 413, 500). It builds an audit row
(:func:`~trajops.security.audit.audit_row`) from what the request left in its ASGI scope and
hands it to the monitor's log, which chains and inserts it; for a 2xx the middleware then
waits until the row is durable. The work per request: one random id, one sha256 of the body,
one encoded line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import Scope

from trajops.security.audit import audit_row, digest_payload
from trajops.security.policy import READ_METHODS
from trajops.serving.middleware import (
    BODY_KEY,
    KEY_ID_KEY,
    MODEL_VERSION_KEY,
    REQUEST_ID_KEY,
    USER_KEY,
)

if TYPE_CHECKING:
    from trajops.logpipe.writer import LogSink
    from trajops.monitoring.metrics import ServingMetrics
    from trajops.monitoring.service import Monitor

SECRET_BODIES = frozenset(
    {
        "/v1/auth/login",
        "/v1/auth/oidc/exchange",
        "/v1/users",
        "/v1/users/{name}/reset-password",
    }
)
"""Routes whose bodies hold a password or a one-time code: their audit rows keep no digest of
the body (a fast hash of a known JSON shape would let anyone who reads the audit trail test
password guesses offline, which argon2 is there to prevent)."""


log = logging.getLogger(__name__)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LogBackpressure:
    """Slows requests down, asynchronously and in arrival order, while the log writer is behind.

    Rows logged but not yet stored (``writer.pending``) are safe on disk, but a store that
    stays slower than the traffic would let that backlog grow without end. While it is above
    ``high`` times ``queue_size`` rows, requests line up behind an ``asyncio.Lock`` (FIFO) and
    pass one by one as the writer catches up (the loop keeps running meanwhile); a request
    waits at most ``max_wait_s``, then goes on.

    Args:
        writer: the monitor's log writer.
        metrics: where waited seconds are counted (``trajops_log_backpressure_seconds_total``).
        high: share of ``queue_size`` above which requests wait. The default lets a backlog of
            ``queue_size`` rows build up first: at full speed the writer trails the requests by
            a status report and a group-commit window, which must not slow anybody down.
        max_wait_s: longest wait of one request.
    """

    def __init__(
        self,
        writer: LogSink,
        metrics: ServingMetrics,
        *,
        high: float = 1.0,
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
    """Turns finished requests into audit rows queued on ``monitor.writer``.

    A refused authentication (401, or 429 to an address that failed too often) is not a row of
    its own: refusals are counted per client address and written as one ``auth.failures`` row
    per address and window of ``window_s`` (with the count), so a flood of bad or missing keys
    cannot flood the audit trail.

    Args:
        monitor: owns the log writer and the pseudonymiser.
        window_s: length of a failed-authentication window.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        monitor: Monitor,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitor = monitor
        self.failures = 0
        self.window_s = window_s
        self._clock = clock
        self._clients: dict[str, str] = {}
        self._refused: dict[str | None, int] = {}
        self._window_ends = clock() + window_s

    def __call__(self, scope: Scope, *, status: int, seconds: float) -> None:
        """Queue the audit row of one finished request; never raises (a lost audit row is
        logged, and the writer itself never loses a queued row)."""
        try:
            client = scope.get("client")
            client_key = self._client_key(client[0]) if client else None
            if self._clock() >= self._window_ends:
                self.flush()
            if status == 401 or (status == 429 and scope.get(KEY_ID_KEY) is None):
                self._refused[client_key] = self._refused.get(client_key, 0) + 1
                return
            route = getattr(scope.get("route"), "path", None) or scope["path"]
            body: bytes | None = scope.get(BODY_KEY)
            details: dict[str, str] = {}
            if scope.get(USER_KEY):  # who: the person behind the session or the owned key
                details["user"] = scope[USER_KEY]
            if route != scope["path"] and scope["method"] not in READ_METHODS:
                details["path"] = scope["path"][:300]  # what: the version, experiment, user
            row = audit_row(
                route=route,
                method=scope["method"],
                status=status,
                latency_ms=seconds * 1e3,
                key_id=scope.get(KEY_ID_KEY),
                request_id=scope.get(REQUEST_ID_KEY) or _header(scope, b"x-request-id"),
                model_version=scope.get(MODEL_VERSION_KEY),
                payload_digest=digest_payload(body)
                if body and route not in SECRET_BODIES
                else None,
                client_key=client_key,
                details=details,
            )
            self.monitor.writer.submit("audit_log", [row])
        except Exception:  # auditing must never break the response already sent
            self.failures += 1
            log.exception("audit record of %s %s not queued", scope.get("method"), scope["path"])

    def flush(self) -> None:
        """Write the window's failed-authentication counts (one row per client address)."""
        refused, self._refused = self._refused, {}
        self._window_ends = self._clock() + self.window_s
        rows = [
            audit_row(
                route="*",
                method="AUTH",
                status=401,
                client_key=client_key,
                event="auth.failures",
                details={"count": count, "window_s": self.window_s},
            )
            for client_key, count in refused.items()
        ]
        if rows:
            self.monitor.writer.submit("audit_log", rows)

    def _client_key(self, address: str) -> str:
        # pseudonymised once per address (an HMAC per request adds up)
        key = self._clients.get(address)
        if key is None:
            if len(self._clients) >= 65_536:  # addresses come from the network: bounded
                self._clients.clear()
            key = self._clients[address] = self.monitor.pseudonymise(address, namespace="client")
        return key

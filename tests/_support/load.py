"""A steady-load driver for fault-injection tests: ``/v1/predict`` at a fixed rate, every outcome
recorded.

:class:`SteadyLoad` runs ``concurrency`` asyncio workers on one ``httpx.AsyncClient`` in a
background thread (its own event loop), so the test thread stays free to break things while
requests flow. Each worker paces itself to its share of ``rate_per_s``; a request that fails
at the transport level (refused, reset, timed out) is recorded with ``status=None``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

BodyFactory = Callable[[int], dict[str, Any]]
"""``body(i)`` -> the JSON body of the i-th request."""


def walker_body(i: int) -> dict[str, Any]:
    """One straight walker whose start depends on ``i`` (every body unique: no cache hits)."""
    x0, y0 = (i % 1000) * 0.5, (i // 1000) * 0.5
    return {"agents": [{"agent_id": f"a{i}", "positions": [[x0 + 0.4 * t, y0] for t in range(8)]}]}


def cycling_body(distinct: int) -> BodyFactory:
    """Bodies that repeat every ``distinct`` requests (so a cache can answer)."""
    return lambda i: walker_body(i % distinct)


@dataclass(frozen=True)
class Outcome:
    """One request: monotonic start/end, HTTP status (None: transport error) and response bits."""

    started: float
    finished: float
    status: int | None
    error: str | None = None
    request_id: str | None = None
    version: str | None = None
    cached: bool | None = None
    variant: str | None = None
    index: int = 0
    """Which request of the run (the ``i`` its body was built from)."""
    retried: bool = False
    """Sent twice: the first try lost its connection before any answer (``retry_closed``)."""


class SteadyLoad:
    """Fixed-rate ``POST /v1/predict`` load in a background thread.

    Args:
        url: base URL of the service.
        headers: sent with every request (the API key).
        rate_per_s: total target rate over all workers.
        concurrency: workers (at most this many requests in flight).
        body: body of the i-th request.
        timeout_s: per-request timeout.
        path: the route to load.
        retry_closed: send a request once more when its connection broke before any answer
            came back (a keep-alive connection the server closed as the request went out),
            as HTTP clients may (RFC 9112 9.3.1) and Go's does; the retry is recorded.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        rate_per_s: float = 150.0,
        concurrency: int = 8,
        body: BodyFactory = walker_body,
        timeout_s: float = 15.0,
        path: str = "/v1/predict",
        retry_closed: bool = False,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.interval_s = concurrency / rate_per_s
        self.concurrency = concurrency
        self.body = body
        self.timeout_s = timeout_s
        self.path = path
        self.retry_closed = retry_closed
        self._outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter = 0

    # --- control (test thread) ------------------------------------------------------------
    def start(self) -> SteadyLoad:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="steady-load", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> list[Outcome]:
        """Stop sending, wait for in-flight requests; returns every outcome, in start order."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("the load driver did not stop in time")
        return self.outcomes()

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return sorted(self._outcomes, key=lambda o: o.started)

    def wait_for(self, predicate: Callable[[list[Outcome]], bool], timeout_s: float) -> bool:
        """Poll ``predicate(outcomes)`` until true or ``timeout_s``; returns whether it held."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.outcomes()):
                return True
            time.sleep(0.1)
        return predicate(self.outcomes())

    def wait_requests(self, n: int, timeout_s: float = 30.0) -> None:
        """Wait until ``n`` more requests have finished (raises when the load stalls)."""
        target = len(self.outcomes()) + n
        if not self.wait_for(lambda o: len(o) >= target, timeout_s):
            raise AssertionError(f"load stalled: {len(self.outcomes())} of {target} requests")

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.stop()

    # --- the driver (its own thread and loop) ---------------------------------------------
    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.headers, timeout=self.timeout_s, limits=limits
        ) as http:
            await asyncio.gather(*(self._worker(http, w) for w in range(self.concurrency)))

    def _next(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    async def _worker(self, http: httpx.AsyncClient, worker: int) -> None:
        next_at = time.monotonic() + worker * self.interval_s / self.concurrency
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at = max(next_at + self.interval_s, time.monotonic() - self.interval_s)
            outcome = await self._one(http, self._next())
            with self._lock:
                self._outcomes.append(outcome)

    async def _one(self, http: httpx.AsyncClient, i: int) -> Outcome:
        t0 = time.monotonic()
        retried = False
        try:
            try:
                r = await http.post(self.path, json=self.body(i))
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if not self.retry_closed:
                    raise
                retried = True
                r = await http.post(self.path, json=self.body(i))
        except httpx.HTTPError as exc:
            error = type(exc).__name__
            return Outcome(t0, time.monotonic(), None, error=error, index=i, retried=retried)
        if r.status_code != 200:
            error = r.text[:300]
            return Outcome(
                t0, time.monotonic(), r.status_code, error=error, index=i, retried=retried
            )
        out = r.json()
        return Outcome(
            t0,
            time.monotonic(),
            200,
            request_id=out.get("request_id"),
            version=(out.get("model") or {}).get("version"),
            cached=out.get("cached"),
            variant=out.get("variant"),
            index=i,
            retried=retried,
        )


def server_errors(outcomes: list[Outcome]) -> list[Outcome]:
    """Outcomes with a 5xx status."""
    return [o for o in outcomes if o.status is not None and o.status >= 500]


def served_ids(outcomes: list[Outcome]) -> list[str]:
    """Request ids of the 200 responses."""
    return [o.request_id for o in outcomes if o.status == 200 and o.request_id]

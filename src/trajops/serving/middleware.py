"""Pure ASGI middleware of the prediction service: body size limit, request metrics, audit,
and the durability of what a 2xx answers.

The body limit is enforced twice: on ``Content-Length`` before reading anything, and on the
bytes actually streamed (chunked uploads have no length). The body is read whole before the
app runs, so the app never sees a truncated body.

When the app starts its response, the request's audit row is handed to the log; a 2xx is
held until the log says every row handed to it so far (the audit row and the rows the route
logged, such as the prediction's) survives a crash of this process. If the log cannot be
written, the client gets a 503 instead of the 2xx.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trajops.monitoring.metrics import NO_MODEL, ServingMetrics
from trajops.serving.responses import error_response

MODEL_VERSION_KEY = "trajops.model_version"
"""Scope key where a route records the model version that served the request."""
START_KEY = "trajops.t0"
"""Scope key holding ``time.perf_counter()`` at the request's arrival."""
BODY_KEY = "trajops.body"
"""Scope key holding the raw request body read here (the audit digests it; no second read)."""
KEY_ID_KEY = "trajops.key_id"
"""Scope key holding the id of the API key that authenticated the request."""
KEY_SCOPES_KEY = "trajops.key_scopes"
"""Scope key holding the scopes of the API key that authenticated the request."""
USER_KEY = "trajops.user"
"""Scope key holding the user behind the request (a session's, a key's owner), or None."""
PRINCIPAL_KEY = "trajops.principal"
"""Scope key holding the verified key or session (:class:`~trajops.security.keys.KeyInfo`)."""
REQUEST_ID_KEY = "trajops.request_id"
"""Scope key holding the request id a route assigned (echoed as ``x-request-id``)."""

RequestHook = Callable[..., None]
"""``hook(scope, status=..., seconds=...)`` called as each response starts (the auditor)."""
DurableHook = Callable[[], Awaitable[None]]
"""``await durable()`` returns once every row logged so far is durable (raises ``OSError``)."""

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NEVER_WAIT = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes answer at once even while the log writer is behind."""


class ServingMiddleware:
    """Counts and times every HTTP request; answers 413 to bodies above ``max_body_bytes``.

    Args:
        app: the wrapped ASGI app.
        metrics: where requests are counted.
        max_body_bytes: body size limit.
        app_state: the app's state, read per request (the lifespan fills it after the stack
            is built): ``on_finish`` (:data:`RequestHook`, the auditor), ``durable``
            (:data:`DurableHook`) and ``backpressure``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServingMetrics,
        max_body_bytes: int,
        app_state: Any = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.app_state = app_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope[START_KEY] = t0
        status = 500
        started = refused = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, refused
            if refused:
                return  # the 2xx was replaced by a 503: drop the rest of it
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                self._finish(scope, status, time.perf_counter() - t0)
                durable: DurableHook | None = getattr(self.app_state, "durable", None)
                if durable is not None and 200 <= status < 300 and scope["path"] not in _NEVER_WAIT:
                    try:
                        await durable()
                    except OSError as exc:
                        refused, status = True, 503
                        await self._not_durable(exc)(scope, _no_receive, send)
                        return
            await send(message)

        try:
            backpressure = getattr(self.app_state, "backpressure", None)
            if (
                backpressure is not None
                and backpressure.behind()
                and scope["path"] not in _NEVER_WAIT
            ):
                await backpressure.wait()
            if scope["method"] in _BODY_METHODS:
                body = await self._read_body(scope, receive)
                if body is None:
                    await self._too_large(scope, receive, send_wrapper)
                    return
                scope[BODY_KEY] = body
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - t0
            if not started:  # an exception: the outer error handler answers 500
                self._finish(scope, status, seconds)
            route = scope.get("route")
            self.metrics.observe_request(
                route=getattr(route, "path", "unmatched"),
                method=scope["method"],
                status=status,
                model_version=scope.get(MODEL_VERSION_KEY, NO_MODEL),
                seconds=seconds,
            )

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        hook: RequestHook | None = getattr(self.app_state, "on_finish", None)
        if hook is not None:
            hook(scope, status=status, seconds=seconds)

    @staticmethod
    def _not_durable(exc: OSError) -> Any:
        return error_response(
            503,
            code="log_unavailable",
            message="the request's records could not be made durable; retry later",
            details=[{"loc": ["log"], "msg": type(exc).__name__}],
            headers={"retry-after": "5"},
        )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` when it is (or announces to be) over the limit."""
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        return None
                except ValueError:
                    pass  # the HTTP server refuses malformed lengths before we get here
                break
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            code="payload_too_large",
            message=f"request body larger than {self.max_body_bytes} bytes",
            details=[{"loc": ["body"], "msg": f"at most {self.max_body_bytes} bytes"}],
            headers={"connection": "close"},
        )
        await response(scope, receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _replay(body: bytes, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replay

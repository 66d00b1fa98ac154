"""The auth edge: API key, scope and per-key rate limit for every route, in one pure ASGI layer.

Every request is matched to its route template and checked against
:func:`trajops.security.policy.required_access` (deny by default: a route the policy does not
know needs ``admin``). Middleware rather than a FastAPI dependency, because it must also guard
the routes FastAPI adds itself (``/docs``, ``/openapi.json``) and unmatched paths.

Cost on the hot path: one dict lookup for the route's access (static paths are memoised), one
HMAC and a dict lookup in :class:`~trajops.security.keys.ApiKeys`' cache, one token-bucket step.
Only a cache miss touches the store, in a worker thread; the Redis rate limiter (network I/O)
also runs in a thread, the in-process one inline.

Refusals are rendered here in the service's one error shape: 401 with ``WWW-Authenticate``,
403, 429 with ``Retry-After``, 503 when the key cannot be verified (store down, cache cold).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from trajops.errors import AuthenticationError, RateLimited, ServiceUnavailable, TrajopsError
from trajops.monitoring.metrics import ServingMetrics
from trajops.security.keys import ApiKeys, KeyInfo, authorize
from trajops.security.policy import Access, required_access
from trajops.security.ratelimit import LocalRateLimiter, RateLimiter, enforce
from trajops.security.sessions import Sessions, is_session_token
from trajops.serving.middleware import KEY_ID_KEY, KEY_SCOPES_KEY, PRINCIPAL_KEY, USER_KEY
from trajops.serving.responses import OrjsonResponse, error_response

WWW_AUTHENTICATE = 'Bearer realm="trajops", ApiKey realm="trajops" header="X-API-Key"'
_MEMO_MAX = 1024
_REFUSED_MAX = 10_000
_REFUSED_TTL_S = 30.0
"""Refused well-formed tokens are remembered this long, so a flood of bad keys costs no
store lookups (a refused token cannot become valid: new keys get new random tokens)."""
_VERIFIED_GRACE_S = 300.0
"""How long a verified key stays usable while the store cannot be reached (revocations made
during an outage take effect when it ends, or after this grace)."""


def _remember(memo: dict[str, Any], token: str, value: Any) -> None:
    if len(memo) >= _REFUSED_MAX and token not in memo:  # tokens come from the network
        memo.clear()
    memo[token] = value


def token_from_scope(scope: Scope) -> str | None:
    """The API key from ``X-API-Key`` or ``Authorization: Bearer`` (raw ASGI headers)."""
    bearer: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-api-key" and value:
            return str(value.decode("latin-1"))
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = value[7:].decode("latin-1").strip() or None
    return bearer


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """Path template of the route ``scope`` goes to (a full match, else a method mismatch)."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path_format", getattr(route, "path", "")))
        if match is Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path_format", getattr(route, "path", "")))
    return partial


_REASONS = {"missing", "malformed", "unknown key", "revoked", "expired"}


def _reason(exc: TrajopsError) -> str:
    """Label of a refusal for ``trajops_auth_failures_total``."""
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if exc.status_code == 403:
        return "forbidden"
    if exc.status_code != 401:
        return "unavailable"
    detail = str(exc.details[0]["msg"]) if exc.details else ""
    return detail.replace(" key", "") if detail in _REASONS else "invalid"


class AuthMiddleware:
    """Authenticates, authorises and rate-limits every HTTP request before the app sees it.

    Args:
        app: the wrapped ASGI app.
        routes: the app's route list (read at request time, so routes added later count).
        app_state: the app's state; ``keys`` (:class:`ApiKeys`) and ``rate_limiter`` are read
            from it per request, since the lifespan opens them after the stack is built.
        metrics: where refusals are counted (``trajops_auth_failures_total{reason}``).
        metrics_public: whether ``/metrics`` needs no key.
        failures: the budget of failed authentications per client address (a token bucket,
            shared with the sign-in route); past it the address gets 429 without its key being
            looked at.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        app_state: Any,
        metrics: ServingMetrics,
        metrics_public: bool,
        failures: LocalRateLimiter,
    ) -> None:
        self.app = app
        self.routes = routes
        self.app_state = app_state
        self.metrics = metrics
        self.metrics_public = metrics_public
        self._memo: dict[tuple[str, str], Access] = {}
        self._refused: dict[str, tuple[float, AuthenticationError]] = {}
        self._verified: dict[str, tuple[float, KeyInfo]] = {}
        self._inflight: dict[str, asyncio.Future[KeyInfo]] = {}
        self._failed = failures

    def access(self, scope: Scope) -> Access:
        """What the request needs (memoised for paths without parameters)."""
        method, path = scope["method"], scope["path"]
        found = self._memo.get((method, path))
        if found is not None:
            return found
        template = route_template(self.routes, scope)
        access = required_access(method, template or path, metrics_public=self.metrics_public)
        if template == path and len(self._memo) < _MEMO_MAX:  # bounded: static paths only
            self._memo[(method, path)] = access
        return access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self.access(scope)
        if access.public:
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else ""
        try:
            key = await self._authenticate(scope, address)
            scope[KEY_ID_KEY] = key.id
            scope[KEY_SCOPES_KEY] = key.scopes
            scope[USER_KEY] = key.user
            scope[PRINCIPAL_KEY] = key
            authorize(key, access)
            limiter: RateLimiter | None = getattr(self.app_state, "rate_limiter", None)
            if limiter is not None:
                if isinstance(limiter, LocalRateLimiter):
                    enforce(limiter, key.id)
                else:  # Redis: network I/O stays off the event loop
                    await anyio.to_thread.run_sync(lambda: enforce(limiter, key.id))
        except AuthenticationError as exc:
            if not self._failed.hit(address).allowed:  # its budget of failed attempts is spent
                await self._deny(self._throttled(), scope, receive, send)
                return
            await self._deny(exc, scope, receive, send)
            return
        except TrajopsError as exc:
            await self._deny(exc, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _throttled(self) -> RateLimited:
        return RateLimited(
            "too many failed authentications from this address; retry later",
            retry_after_s=1.0 / self._failed.limit.rate_per_s,
            details=[{"loc": ["header", "X-API-Key"], "msg": "too many failures"}],
        )

    async def _deny(self, exc: TrajopsError, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.auth_failures.labels(_reason(exc)).inc()
        await self._refuse(exc)(scope, receive, send)

    async def _authenticate(self, scope: Scope, address: str) -> KeyInfo:
        """The request's key: from the in-process cache, else looked up in the store (not
        for an address that has spent its failed attempts: a verified key still passes)."""
        keys: ApiKeys | Sessions | None = getattr(self.app_state, "keys", None)
        token = token_from_scope(scope)
        if is_session_token(token):
            keys = getattr(self.app_state, "sessions", None)
        if keys is None:
            raise ServiceUnavailable("the API key service is not ready (starting up)")
        info = keys.authenticate_cached(token)
        if info is not None:
            return info
        assert token is not None  # authenticate_cached raised for a missing token
        refused = self._refused.get(token)
        if refused is not None and refused[0] > time.monotonic():
            raise refused[1]  # unknown, revoked and expired keys never become valid
        if self._failed.peek(address) < 1.0 and token not in self._verified:
            raise self._throttled()
        try:
            info = await self._lookup(keys, token)
        except AuthenticationError as exc:
            _remember(self._refused, token, (time.monotonic() + _REFUSED_TTL_S, exc))
            raise
        except ServiceUnavailable:
            # The store cannot confirm the key right now (down, or SQLite busy under the log
            # writer): a key verified within the grace period keeps working, so an outage
            # degrades the service instead of locking every client out.
            verified = self._verified.get(token)
            if verified is None or verified[0] < time.monotonic():
                raise
            if verified[1].status() != "active":  # its expiry passed meanwhile
                raise
            self.metrics.auth_failures.labels("store_down_grace").inc()
            return verified[1]
        _remember(self._verified, token, (time.monotonic() + _VERIFIED_GRACE_S, info))
        return info

    async def _lookup(self, keys: ApiKeys | Sessions, token: str) -> KeyInfo:
        """One store lookup per token at a time, in a worker thread: requests that miss the
        cache together (it expires for all of them at once) share it."""
        future = self._inflight.get(token)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, keys.authenticate, token)
            self._inflight[token] = future
            future.add_done_callback(lambda _: self._inflight.pop(token, None))
        return await asyncio.shield(future)

    @staticmethod
    def _refuse(exc: TrajopsError) -> OrjsonResponse:
        headers: dict[str, str] = {}
        if exc.status_code == 401:
            headers["www-authenticate"] = WWW_AUTHENTICATE
        elif isinstance(exc, RateLimited):
            headers["retry-after"] = str(max(1, math.ceil(exc.retry_after_s)))
        elif exc.status_code == 503:
            headers["retry-after"] = "5"
        return error_response(
            exc.status_code,
            code=exc.code,
            message=exc.message,
            details=exc.details,
            headers=headers,
        )

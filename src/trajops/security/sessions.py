"""Signed-in sessions: what a person gets for a password (or a single sign-on) and sends back.

A session token reads ``tjs_<id>_<secret>`` and is sent like an API key (``Authorization:
Bearer`` or ``X-API-Key``); the store keeps its peppered HMAC only. It carries the scopes of the
user's role (:data:`~trajops.security.policy.ROLE_SCOPES`) as they are when it is verified, and
ends at its expiry, at sign-out, or when the user is disabled, reset or changes role. Verified
sessions are cached for ``cache_ttl_s`` like API keys: an ending made elsewhere takes effect
within that time, one made through the same :class:`Sessions` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from trajops.errors import AuthenticationError, ServiceUnavailable
from trajops.security._time import utc, utcnow
from trajops.security._tokens import (
    TokenDigest,
    VerifiedCache,
    digest_matches,
    new_token,
    token_pattern,
)
from trajops.security.keys import KeyInfo
from trajops.security.policy import ROLE_SCOPES, Role
from trajops.security.users import UserInfo, Users, user_info
from trajops.store.models import User, UserSession

TOKEN_PREFIX = "tjs"
HANDOFF_PREFIX = "tjh"
HANDOFF_TTL_S = 60.0
"""How long a single sign-on's one-time login code may wait to be redeemed."""
_TOKEN = token_pattern(TOKEN_PREFIX)
_HANDOFF = token_pattern(HANDOFF_PREFIX)


def is_session_token(token: str | None) -> bool:
    """True for a token shaped like a session's (its prefix decides who verifies it)."""
    return bool(token) and str(token).strip().startswith(TOKEN_PREFIX + "_")


def _refused(msg: str, reason: str = "invalid") -> AuthenticationError:
    return AuthenticationError(msg, details=[{"loc": ["header", "Authorization"], "msg": reason}])


class Sessions:
    """Start, verify and end sessions of :class:`~trajops.security.users.Users`.

    Args:
        users: the users (their store holds the sessions too).
        pepper: server-side secret, the API keys' (at least 16 bytes).
        ttl_s: lifetime of a session.
        cache_ttl_s: seconds a verified session is trusted without a store lookup.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        users: Users,
        *,
        pepper: bytes,
        ttl_s: float,
        cache_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self.store = users.store
        self.ttl_s = ttl_s
        self._digest = TokenDigest(pepper)
        self._cache: VerifiedCache[KeyInfo] = VerifiedCache(cache_ttl_s, clock)

    # --- starting and ending ----------------------------------------------------------
    def login(self, name: str, password: str) -> tuple[KeyInfo, str]:
        """A session for ``name`` if the password is theirs (see :meth:`Users.verify`)."""
        return self.start(self.users.verify(name, password), method="password")

    def start(self, user: UserInfo, *, method: str) -> tuple[KeyInfo, str]:
        """A new session for an already verified, active ``user``; returns it and its token."""
        session_id, token = new_token(TOKEN_PREFIX)
        now = utcnow()
        row = UserSession(
            id=session_id,
            user_id=user.id,
            token_hash=self._digest(token),
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_s),
            method=method,
        )
        with self.store.session() as session:
            session.add(row)
        return _info(row, user.name, user.role), token

    def handoff(self, user: UserInfo) -> str:
        """A one-time login code for ``user`` (single sign-on): the browser carries it to the
        dashboard, which redeems it once, within :data:`HANDOFF_TTL_S`, for a session. The
        session token itself never travels in a URL."""
        code_id, code = new_token(HANDOFF_PREFIX)
        now = utcnow()
        with self.store.session() as session:
            session.add(
                UserSession(
                    id=code_id,
                    user_id=user.id,
                    token_hash=self._digest(code),
                    created_at=now,
                    expires_at=now + timedelta(seconds=HANDOFF_TTL_S),
                    method="handoff",
                )
            )
        return code

    def redeem(self, code: str) -> tuple[KeyInfo, str]:
        """The session a one-time login code stands for (the code is spent).

        Raises:
            AuthenticationError: malformed, unknown, spent or expired code; disabled user.
        """
        match = _HANDOFF.match(code.strip())
        if match is None:
            raise _refused("invalid login code", "malformed")
        with self.store.session() as session:
            row = session.get(UserSession, match.group(1))
            stored = row.token_hash if row is not None else None
            if not digest_matches(stored, self._digest(code.strip())) or row is None:
                raise _refused("invalid login code", "unknown key")
            if row.method != "handoff" or row.revoked_at is not None:
                raise _refused("the login code was used already; sign in again", "revoked")
            if utc(row.expires_at) <= utcnow():
                raise _refused("the login code expired; sign in again", "expired")
            row.revoked_at = utcnow()
            user = session.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                raise _refused("the user is disabled", "revoked")
            info = user_info(user)
        return self.start(info, method="oidc")

    def end(self, session_id: str) -> None:
        """Sign out: the session stops working (idempotent)."""
        with self.store.session() as session:
            row = session.get(UserSession, session_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()
        self._cache.forget(lambda info: info.id == session_id)

    def forget_user(self, name: str) -> None:
        """Drop ``name``'s cached sessions (after a disable, reset or role change here)."""
        self._cache.forget(lambda info: info.user == name)

    # --- hot path ---------------------------------------------------------------------
    def authenticate_cached(self, token: str | None) -> KeyInfo | None:
        """The session from the in-process cache only (``None`` on a miss; never the store)."""
        if not token:
            raise _refused("missing session token", "missing")
        cached = self._cache.get(self._digest(token.strip()))
        return None if cached is None else _check_live(cached)

    def authenticate(self, token: str) -> KeyInfo:
        """The session behind ``token``, with its user's current role.

        Raises:
            AuthenticationError: malformed, unknown, expired or ended session; disabled user.
            ServiceUnavailable: the store cannot be reached.
        """
        token = token.strip()
        match = _TOKEN.match(token)
        if match is None:
            raise _refused("invalid session token", "malformed")
        digest = self._digest(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return _check_live(cached)
        try:
            info = self._lookup(match.group(1), digest)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"cannot verify the session: operational store unreachable "
                f"({exc.__class__.__name__})"
            ) from None
        self._cache.put(digest, info)
        return info

    def _lookup(self, session_id: str, digest: str) -> KeyInfo:
        with self.store.session() as session:
            row = session.get(UserSession, session_id)
            stored = row.token_hash if row is not None else None
            if not digest_matches(stored, digest) or row is None:
                raise _refused("invalid session token", "unknown key")
            if row.revoked_at is not None or row.method == "handoff":
                raise _refused("the session has ended; sign in again", "revoked")
            user = session.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                raise _refused("the session's user is disabled", "revoked")
            return _check_live(_info(row, user.name, Role(user.role)))


def _info(row: UserSession, user: str, role: Role) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=f"session of {user}",
        scopes=ROLE_SCOPES[role],
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        user=user,
        kind="session",
    )


def _check_live(info: KeyInfo) -> KeyInfo:
    if info.status() == "expired":
        raise _refused("the session has expired; sign in again", "expired")
    return info

"""API keys: high-entropy tokens of which only a peppered HMAC is stored.

A token reads ``tjo_<id>_<secret>``: ``id`` (12 hex characters) is the public key id used for
lookup, logs and the audit trail; ``secret`` is ``secrets.token_urlsafe(32)`` (256 bits). The
store keeps ``HMAC-SHA256(pepper, token)`` only; the pepper is a server-side secret
(``TRAJOPS_API_KEY_PEPPER``, else a random file under ``home``), so a stolen database alone
cannot be used to test guesses. Hashes are compared with :func:`hmac.compare_digest`.

Verified keys are cached in-process for ``cache_ttl_s`` (5 s by default): authentication costs
one HMAC and a dict lookup on the hot path, and a revocation made elsewhere (CLI, another
replica) takes effect within that time; a revocation through the same :class:`ApiKeys` is
immediate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trajops._secrets import load_or_create_secret
from trajops.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from trajops.security import _tokens
from trajops.security._time import utc, utcnow
from trajops.security._tokens import TokenDigest, VerifiedCache, new_token, token_pattern
from trajops.security.policy import (
    Access,
    Role,
    Scope,
    allows,
    grantable_scopes,
    parse_scopes,
)
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import ApiKey, User

TOKEN_PREFIX = "tjo"
PEPPER_FILE = "api_key.pepper"
_TOKEN = token_pattern(TOKEN_PREFIX)


def load_or_create_pepper(settings: Settings) -> bytes:
    """The pepper: ``TRAJOPS_API_KEY_PEPPER`` or a random secret kept (mode 0600) under ``home``.

    Replicas that share a store must share the pepper: set it explicitly in production.
    """
    return load_or_create_secret(settings, settings.api_key_pepper, PEPPER_FILE)


@dataclass(frozen=True)
class KeyInfo:
    """What is known about a credential, an API key or a person's session (never the token).

    Attributes:
        user: the person behind it: the owner of a key, the user of a session (None: a key
            that belongs to no one, e.g. a service's).
        kind: ``key`` or ``session``.
    """

    id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    replaced_by: str | None = None
    user: str | None = None
    kind: str = "key"

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "status": self.status(),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
            "replaced_by": self.replaced_by,
            "owner": self.user,
        }


def _info(row: ApiKey, owner: User | None = None) -> KeyInfo:
    scopes = parse_scopes(row.scopes)
    if owner is not None:  # a demoted owner demotes their keys
        scopes = scopes & grantable_scopes(Role(owner.role))
    return KeyInfo(
        id=row.id,
        name=row.name,
        scopes=scopes,
        user=owner.name if owner is not None else None,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at) if row.expires_at else None,
        revoked_at=utc(row.revoked_at) if row.revoked_at else None,
        last_used_at=utc(row.last_used_at) if row.last_used_at else None,
        replaced_by=row.replaced_by,
    )


def authorize(key: KeyInfo, need: Access | Scope | None) -> None:
    """Raise :class:`PermissionDenied` unless ``key`` meets ``need`` (a scope, or a route's
    access: any one of its scopes; admin grants all)."""
    access = need if isinstance(need, Access) else Access(scopes=(need,) if need else ())
    if not allows(key.scopes, access):
        granted = ",".join(sorted(s.value for s in key.scopes))
        wanted = " or ".join(s.value for s in access.scopes)
        who = f"the session of {key.user}" if key.kind == "session" else f"API key {key.id}"
        raise PermissionDenied(
            f"{who} lacks the {wanted} scope (it has: {granted})",
            details=[{"loc": ["scope"], "msg": f"requires {wanted}"}],
        )


class ApiKeys:
    """Create, list, revoke, rotate and authenticate API keys stored in ``store``.

    Args:
        store: the operational store (table ``api_keys``).
        pepper: server-side secret of at least 16 bytes (:func:`load_or_create_pepper`).
        cache_ttl_s: seconds a verified key is trusted without a database lookup (0: never).
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        store: Store,
        *,
        pepper: bytes,
        cache_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._digest = TokenDigest(pepper)
        self.cache_ttl_s = cache_ttl_s
        self._cache: VerifiedCache[KeyInfo] = VerifiedCache(cache_ttl_s, clock)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> ApiKeys:
        return cls(
            store, pepper=load_or_create_pepper(settings), cache_ttl_s=settings.api_key_cache_s
        )

    # --- management -------------------------------------------------------------------
    def create_key(
        self,
        *,
        name: str,
        scopes: Iterable[str] | str,
        expires_at: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key; returns its info and the token, which is shown once and never stored.

        Args:
            owner: the user name the key belongs to; its scopes must be ones the owner's role
                may grant (:func:`grantable_scopes`), and it stops working when they are
                disabled.

        Raises:
            ValidationError: empty name, unknown scope, or a scope beyond the owner's role.
            NotFoundError: unknown owner.
        """
        if not name.strip():
            raise ValidationError(
                "a key needs a non-empty name", details=[{"loc": ["name"], "msg": "empty"}]
            )
        granted = parse_scopes(scopes)
        key_id, token = new_token(TOKEN_PREFIX)
        with self.store.session() as session:
            user = _owner(session, owner) if owner is not None else None
            if user is not None:
                beyond = granted - grantable_scopes(Role(user.role))
                if beyond:
                    raise ValidationError(
                        f"user {user.name!r} is a {user.role} and cannot own a key with the "
                        f"{', '.join(sorted(beyond))} scope",
                        details=[{"loc": ["scopes"], "msg": "beyond the owner's role"}],
                    )
        row = ApiKey(
            id=key_id,
            name=name.strip(),
            key_hash=self._digest(token),
            scopes=",".join(sorted(s.value for s in granted)),
            created_at=utcnow(),
            expires_at=utc(expires_at) if expires_at else None,
            owner_id=user.id if user is not None else None,
        )
        with self.store.session() as session:
            session.add(row)
            return _info(row, user), token

    def get_key(self, key_id: str) -> KeyInfo:
        with self.store.session() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFoundError(
                    f"no API key with id {key_id!r}",
                    details=[{"loc": ["key_id"], "msg": "unknown"}],
                )
            return _info(row, _owner_of(session, row))

    def list_keys(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first."""
        with self.store.session() as session:
            stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
            if not include_revoked:
                stmt = stmt.where(ApiKey.revoked_at.is_(None))
            owners = {u.id: u for u in session.scalars(select(User))}
            return [
                _info(r, owners.get(r.owner_id) if r.owner_id else None)
                for r in session.scalars(stmt)
            ]

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key (idempotent); effective at once here, within ``cache_ttl_s`` elsewhere."""
        with self.store.session() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFoundError(
                    f"no API key with id {key_id!r}",
                    details=[{"loc": ["key_id"], "msg": "unknown"}],
                )
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            info = _info(row)
        self._forget(key_id)
        return info

    def rotate_key(self, key_id: str, *, expires_at: datetime | None = None) -> tuple[KeyInfo, str]:
        """Replace a key: a new token with the same name and scopes; the old key is revoked.

        The new key expires at ``expires_at`` or, when the old key had an expiry, after the same
        lifetime from now.

        Raises:
            NotFoundError: unknown id. ConflictError: the key is already revoked.
        """
        old = self.get_key(key_id)
        if old.revoked_at is not None:
            raise ConflictError(
                f"API key {key_id} is revoked and cannot be rotated; create a new key",
                details=[{"loc": ["key_id"], "msg": "revoked"}],
            )
        if expires_at is None and old.expires_at is not None:
            expires_at = utcnow() + (old.expires_at - old.created_at)
        new, token = self.create_key(
            name=old.name, scopes=old.scopes, expires_at=expires_at, owner=old.user
        )
        with self.store.session() as session:
            row = session.get(ApiKey, key_id)
            assert row is not None
            row.revoked_at = utcnow()
            row.replaced_by = new.id
        self._forget(key_id)
        return new, token

    # --- hot path ---------------------------------------------------------------------
    def authenticate(self, token: str | None) -> KeyInfo:
        """The key behind ``token``.

        Raises:
            AuthenticationError: missing, malformed, unknown, expired or revoked key.
        """
        if not token:
            raise AuthenticationError(
                "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
                details=[{"loc": ["header", "X-API-Key"], "msg": "missing"}],
            )
        token = token.strip()
        match = _TOKEN.match(token)
        if match is None:
            raise AuthenticationError(
                "invalid API key", details=[{"loc": ["header", "X-API-Key"], "msg": "malformed"}]
            )
        digest = self._digest(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return self._check_live(cached)
        try:
            info = self._lookup(match.group(1), digest)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"cannot verify the API key: operational store unreachable ({exc.__class__.__name__})"
            ) from None
        self._cache.put(digest, info)
        return info

    def authenticate_cached(self, token: str | None) -> KeyInfo | None:
        """The key behind ``token`` from the in-process cache only; ``None`` on a cache miss.

        Never touches the store, so an async caller can run it on the event loop and hand only
        misses to :meth:`authenticate` in a worker thread.

        Raises:
            AuthenticationError: missing or malformed token, or a cached key now expired/revoked.
        """
        if not token:
            return self.authenticate(token)  # raises: missing
        token = token.strip()
        if _TOKEN.match(token) is None:
            return self.authenticate(token)  # raises: malformed
        cached = self._cache.get(self._digest(token))
        return None if cached is None else self._check_live(cached)

    def _lookup(self, key_id: str, digest: str) -> KeyInfo:
        with self.store.session() as session:
            row = session.get(ApiKey, key_id)
            stored = row.key_hash if row is not None else None  # None: compared with a dummy
            if not _tokens.digest_matches(stored, digest) or row is None:
                raise AuthenticationError(
                    "invalid API key",
                    details=[{"loc": ["header", "X-API-Key"], "msg": "unknown key"}],
                )
            owner = _owner_of(session, row)
            if owner is not None and owner.disabled_at is not None:
                raise AuthenticationError(
                    f"API key {row.id} belongs to a disabled user",
                    details=[{"loc": ["header", "X-API-Key"], "msg": "revoked"}],
                )
            info = self._check_live(_info(row, owner))
            row.last_used_at = utcnow()
        return info

    @staticmethod
    def _check_live(info: KeyInfo) -> KeyInfo:
        status = info.status()
        if status == "revoked":
            raise AuthenticationError(
                f"API key {info.id} was revoked",
                details=[{"loc": ["header", "X-API-Key"], "msg": "revoked"}],
            )
        if status == "expired":
            assert info.expires_at is not None
            raise AuthenticationError(
                f"API key {info.id} expired at {info.expires_at.isoformat()}",
                details=[{"loc": ["header", "X-API-Key"], "msg": "expired"}],
            )
        return info

    def _forget(self, key_id: str) -> None:
        self._cache.forget(lambda info: info.id == key_id)

    def forget_user(self, name: str) -> None:
        """Drop the cached keys of ``name`` (disabled, or their role changed): effective at
        once here, within ``cache_ttl_s`` elsewhere."""
        self._cache.forget(lambda info: info.user == name)


def _owner(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFoundError(
            f"no user named {name!r}", details=[{"loc": ["owner"], "msg": "unknown user"}]
        )
    return user


def _owner_of(session: Session, row: ApiKey) -> User | None:
    return session.get(User, row.owner_id) if row.owner_id else None


def token_from_headers(headers: Any) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer`` (any mapping with ``.get``)."""
    key = headers.get("x-api-key")
    if key:
        return str(key)
    auth = headers.get("authorization")
    if auth and str(auth).lower().startswith("bearer "):
        return str(auth)[7:].strip() or None
    return None

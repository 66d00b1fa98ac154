"""People: users with a role, argon2-hashed passwords, and users from single sign-on.

A user is ``local`` (a password, hashed with argon2id through ``argon2-cffi``; the hash
carries its own parameters and salt, so stronger parameters apply at the next login) or
``oidc`` (no password: the identity provider vouches for them, and their role follows the
provider's groups at every sign-in). Disabling a user ends their sessions and stops their
keys; nothing is deleted, so the audit trail keeps naming them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trajops.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from trajops.security._time import utc, utcnow
from trajops.security.policy import ROLE_SCOPES, Role
from trajops.store.db import Store
from trajops.store.models import User, UserSession

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_BAD_LOGIN = "invalid user name or password"


def parse_role(value: str) -> Role:
    """``viewer``, ``operator`` or ``admin``.

    Raises:
        ValidationError: any other value, naming the valid ones.
    """
    try:
        return Role(value.strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise ValidationError(
            f"unknown role {value!r}: choose from {valid}",
            details=[{"loc": ["role"], "msg": "unknown role"}],
        ) from None


def check_name(name: str) -> str:
    """A user name: 2-64 characters, lower-case letters, digits and ``. _ @ -``."""
    if not NAME_PATTERN.match(name):
        raise ValidationError(
            f"invalid user name {name!r}: use 2-64 lower-case letters, digits, '.', '_', '@' "
            "or '-', starting with a letter or digit",
            details=[{"loc": ["name"], "msg": "invalid user name"}],
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters (got {len(password)})",
            details=[{"loc": ["password"], "msg": "length"}],
        )
    return password


def generate_password() -> str:
    """A random password (about 128 bits) for a new or reset user, shown once."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class UserInfo:
    """What is known about a user (never the password hash)."""

    id: str
    name: str
    role: Role
    source: str
    created_at: datetime
    disabled_at: datetime | None = None
    last_login_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "name": self.name,
            "role": self.role.value,
            "scopes": sorted(s.value for s in ROLE_SCOPES[self.role]),
            "source": self.source,
            "status": "active" if self.active else "disabled",
            "created_at": iso(self.created_at),
            "disabled_at": iso(self.disabled_at),
            "last_login_at": iso(self.last_login_at),
        }


def user_info(row: User) -> UserInfo:
    return UserInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        source=row.source,
        created_at=utc(row.created_at),
        disabled_at=utc(row.disabled_at) if row.disabled_at else None,
        last_login_at=utc(row.last_login_at) if row.last_login_at else None,
    )


class Users:
    """Create, list, disable users and check their passwords, in the operational store.

    Args:
        store: the operational store (table ``users``).
        hasher: the argon2 hasher (argon2-cffi's RFC 9106 low-memory profile by default).
    """

    def __init__(self, store: Store, *, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None  # hashed on first use: verified for unknown names

    # --- management -------------------------------------------------------------------
    def create(self, *, name: str, role: str | Role, password: str) -> UserInfo:
        """A local user.

        Raises:
            ValidationError: bad name, role or password. ConflictError: the name is taken.
        """
        row = User(
            id=secrets.token_hex(8),
            name=check_name(name),
            role=parse_role(role).value,
            password_hash=self.hasher.hash(check_password(password)),
            source="local",
            created_at=utcnow(),
        )
        with self.store.session() as session:
            if _by_name(session, name) is not None:
                raise ConflictError(
                    f"a user named {name!r} exists", details=[{"loc": ["name"], "msg": "taken"}]
                )
            session.add(row)
            return user_info(row)

    def get(self, name: str) -> UserInfo:
        with self.store.session() as session:
            return user_info(_require(session, name))

    def list(self) -> list[UserInfo]:
        """Every user, oldest first."""
        with self.store.session() as session:
            rows = session.scalars(select(User).order_by(User.created_at, User.name))
            return [user_info(r) for r in rows]

    def disable(self, name: str) -> UserInfo:
        """Disable ``name`` (idempotent) and end their sessions; their keys stop working."""
        with self.store.session() as session:
            row = _require(session, name)
            now = utcnow()
            if row.disabled_at is None:
                _keep_an_admin(session, row)
                row.disabled_at = now
            _end_sessions(session, row.id, now)
            return user_info(row)

    def enable(self, name: str) -> UserInfo:
        with self.store.session() as session:
            row = _require(session, name)
            row.disabled_at = None
            return user_info(row)

    def set_role(self, name: str, role: str | Role) -> UserInfo:
        """Change ``name``'s role; their sessions end (they sign in again with the new one)."""
        new = parse_role(role)
        with self.store.session() as session:
            row = _require(session, name)
            if row.role != new.value:
                _keep_an_admin(session, row)
                row.role = new.value
                _end_sessions(session, row.id, utcnow())
            return user_info(row)

    def reset_password(self, name: str, password: str | None = None) -> tuple[UserInfo, str]:
        """A new password for a local user (generated when ``None``); their sessions end.

        Returns:
            The user and the password (to be shown once).
        """
        password = check_password(password) if password is not None else generate_password()
        with self.store.session() as session:
            row = _require(session, name)
            if row.source != "local":
                raise ConflictError(
                    f"user {name!r} signs in through single sign-on and has no password here",
                    details=[{"loc": ["name"], "msg": "not a local user"}],
                )
            row.password_hash = self.hasher.hash(password)
            _end_sessions(session, row.id, utcnow())
            return user_info(row), password

    # --- sign-in ----------------------------------------------------------------------
    def verify(self, name: str, password: str) -> UserInfo:
        """The user whose name and password these are (argon2 verification: ~50 ms of CPU).

        The same error for an unknown name, a wrong password, a disabled user or an SSO user,
        and the same work for each (a dummy hash is verified when there is no real one), so
        the answer reveals nothing about which names exist.

        Raises:
            AuthenticationError: anything but an active local user with this password.
        """
        with self.store.session() as session:
            row = _by_name(session, name.strip().lower())
            if row is not None and row.password_hash:
                stored = row.password_hash
            else:
                self._dummy = stored = self._dummy or self.hasher.hash(secrets.token_urlsafe(16))
            ok: bool
            try:
                ok = self.hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or row is None or not row.password_hash or row.disabled_at is not None:
                raise AuthenticationError(
                    _BAD_LOGIN, details=[{"loc": ["body", "password"], "msg": "invalid"}]
                )
            if self.hasher.check_needs_rehash(stored):
                row.password_hash = self.hasher.hash(password)
            row.last_login_at = utcnow()
            return user_info(row)

    def sign_in_external(self, *, subject: str, name: str, role: Role) -> UserInfo:
        """The user a single sign-on provider vouches for, created on first sign-in; the role
        follows the provider's groups every time.

        Raises:
            AuthenticationError: the user was disabled here.
            ConflictError: ``name`` belongs to a local user (no silent account takeover).
        """
        name = check_name(name)
        with self.store.session() as session:
            row = session.scalars(select(User).where(User.oidc_subject == subject)).first()
            if row is None:
                if _by_name(session, name) is not None:
                    raise ConflictError(
                        f"user name {name!r} is taken by a local user; an admin must rename "
                        "or remove it before single sign-on can use it",
                        details=[{"loc": ["name"], "msg": "taken"}],
                    )
                row = User(
                    id=secrets.token_hex(8),
                    name=name,
                    role=role.value,
                    source="oidc",
                    oidc_subject=subject,
                    created_at=utcnow(),
                )
                session.add(row)
            if row.disabled_at is not None:
                raise AuthenticationError(
                    f"user {row.name!r} is disabled",
                    details=[{"loc": ["user"], "msg": "disabled"}],
                )
            row.role = role.value
            row.last_login_at = utcnow()
            return user_info(row)


def _by_name(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def _require(session: Session, name: str) -> User:
    row = _by_name(session, name)
    if row is None:
        raise NotFoundError(
            f"no user named {name!r}", details=[{"loc": ["name"], "msg": "unknown user"}]
        )
    return row


def _keep_an_admin(session: Session, row: User) -> None:
    """Refuse to disable or demote the last active admin (nobody could manage users after)."""
    if row.role != Role.ADMIN.value or row.disabled_at is not None:
        return
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.disabled_at.is_(None), User.id != row.id)
    )
    if not others:
        raise ConflictError(
            f"{row.name!r} is the last active admin; make another user admin first",
            details=[{"loc": ["name"], "msg": "last admin"}],
        )


def _end_sessions(session: Session, user_id: str, now: datetime) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )

"""Users, sessions and owned keys against a real SQLite store (migrated by Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from trajops.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from trajops.security._time import utcnow
from trajops.security.keys import ApiKeys
from trajops.security.policy import ROLE_SCOPES, Role, Scope
from trajops.security.sessions import Sessions, is_session_token
from trajops.security.users import Users
from trajops.store import Store
from trajops.store.models import User, UserSession

PEPPER = b"p" * 32
PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2id, test-sized


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'ops.db'}")
    yield store
    store.dispose()


@pytest.fixture()
def users(store: Store) -> Users:
    return Users(store, hasher=FAST)


@pytest.fixture()
def sessions(users: Users) -> Sessions:
    return Sessions(users, pepper=PEPPER, ttl_s=3600, cache_ttl_s=0)


def test_passwords_are_stored_as_argon2id_only(users: Users, store: Store) -> None:
    users.create(name="alice", role="operator", password=PASSWORD)
    with store.session() as session:
        row = session.scalars(select(User)).one()
        assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
        assert PASSWORD not in row.password_hash
    assert users.verify("alice", PASSWORD).role is Role.OPERATOR


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong password!"), ("nobody", PASSWORD), ("ALICE ", "x")],
)
def test_bad_sign_ins_look_alike(users: Users, name: str, password: str) -> None:
    users.create(name="alice", role="viewer", password=PASSWORD)
    with pytest.raises(AuthenticationError) as caught:
        users.verify(name, password)
    assert caught.value.message == "invalid user name or password"


def test_a_disabled_user_cannot_sign_in_and_loses_sessions(
    users: Users, sessions: Sessions
) -> None:
    users.create(name="alice", role="viewer", password=PASSWORD)
    users.create(name="root", role="admin", password=PASSWORD)
    _, token = sessions.login("alice", PASSWORD)
    assert sessions.authenticate(token).user == "alice"
    users.disable("alice")
    with pytest.raises(AuthenticationError, match="ended"):
        sessions.authenticate(token)
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        sessions.login("alice", PASSWORD)
    users.enable("alice")
    assert sessions.login("alice", PASSWORD)[0].user == "alice"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "A", "role": "viewer", "password": PASSWORD}, ValidationError),
        ({"name": "alice", "role": "root", "password": PASSWORD}, ValidationError),
        ({"name": "alice", "role": "viewer", "password": "short"}, ValidationError),
        ({"name": "taken", "role": "viewer", "password": PASSWORD}, ConflictError),
    ],
)
def test_bad_users_are_refused_by_name(users: Users, kwargs: dict[str, str], error: type) -> None:
    users.create(name="taken", role="viewer", password=PASSWORD)
    with pytest.raises(error) as caught:
        users.create(**kwargs)
    assert caught.value.details  # names the field


def test_the_last_admin_cannot_be_disabled_or_demoted(users: Users) -> None:
    users.create(name="root", role="admin", password=PASSWORD)
    with pytest.raises(ConflictError, match="last active admin"):
        users.disable("root")
    with pytest.raises(ConflictError, match="last active admin"):
        users.set_role("root", "viewer")
    users.create(name="second", role="admin", password=PASSWORD)
    assert users.set_role("root", "viewer").role is Role.VIEWER


def test_sessions_carry_the_role_and_end(users: Users, sessions: Sessions, store: Store) -> None:
    users.create(name="alice", role="viewer", password=PASSWORD)
    users.create(name="root", role="admin", password=PASSWORD)
    info, token = sessions.login("alice", PASSWORD)
    assert is_session_token(token) and not is_session_token("tjo_x")
    assert info.scopes == ROLE_SCOPES[Role.VIEWER] and info.kind == "session"
    with store.session() as session:  # only the digest is stored
        row = session.scalars(select(UserSession)).one()
        assert token not in row.token_hash and len(row.token_hash) == 64
    # A role change ends the session; the next one carries the new role.
    users.set_role("alice", "operator")
    with pytest.raises(AuthenticationError):
        sessions.authenticate(token)
    info, token = sessions.login("alice", PASSWORD)
    assert Scope.OPERATE in sessions.authenticate(token).scopes
    sessions.end(info.id)
    with pytest.raises(AuthenticationError, match="ended"):
        sessions.authenticate(token)


def test_sessions_expire(users: Users, sessions: Sessions, store: Store) -> None:
    users.create(name="alice", role="viewer", password=PASSWORD)
    info, token = sessions.login("alice", PASSWORD)
    with store.session() as session:
        row = session.get(UserSession, info.id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(AuthenticationError, match="expired"):
        sessions.authenticate(token)


def test_forged_and_malformed_session_tokens(users: Users, sessions: Sessions) -> None:
    users.create(name="alice", role="viewer", password=PASSWORD)
    _, token = sessions.login("alice", PASSWORD)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "tjs_nothing", "tjs_000000000000_" + "A" * 43):
        with pytest.raises(AuthenticationError):
            sessions.authenticate(bad)


def test_a_login_code_is_redeemed_once(users: Users, sessions: Sessions) -> None:
    user = users.create(name="alice", role="operator", password=PASSWORD)
    code = sessions.handoff(user)
    assert not is_session_token(code)
    with pytest.raises(AuthenticationError):  # a code is not a session
        sessions.authenticate(code.replace("tjh_", "tjs_"))
    info, token = sessions.redeem(code)
    assert sessions.authenticate(token).user == "alice" and info.kind == "session"
    with pytest.raises(AuthenticationError, match="used already"):
        sessions.redeem(code)


def test_single_sign_on_users(users: Users) -> None:
    first = users.sign_in_external(subject="https://idp|1", name="carol", role=Role.VIEWER)
    again = users.sign_in_external(subject="https://idp|1", name="carol", role=Role.ADMIN)
    assert first.id == again.id and again.role is Role.ADMIN and again.source == "oidc"
    with pytest.raises(ConflictError):  # an SSO user has no password to reset
        users.reset_password("carol")
    users.create(name="dave", role="viewer", password=PASSWORD)
    with pytest.raises(ConflictError, match="taken by a local user"):
        users.sign_in_external(subject="https://idp|2", name="dave", role=Role.ADMIN)
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        users.verify("carol", "")  # no password sign-in for SSO users


def test_owned_keys_follow_their_owner(users: Users, store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER, cache_ttl_s=0)
    users.create(name="root", role="admin", password=PASSWORD)
    users.create(name="alice", role="operator", password=PASSWORD)
    with pytest.raises(ValidationError, match="cannot own a key with the admin scope"):
        keys.create_key(name="too much", scopes="admin", owner="alice")
    with pytest.raises(NotFoundError):
        keys.create_key(name="nobody's", scopes="predict", owner="ghost")
    info, token = keys.create_key(name="ci", scopes="predict,operate", owner="alice")
    assert info.user == "alice" and keys.authenticate(token).user == "alice"
    users.set_role("alice", "viewer")  # a demoted owner demotes the key
    assert keys.authenticate(token).scopes == frozenset()
    users.disable("alice")
    with pytest.raises(AuthenticationError, match="disabled user"):
        keys.authenticate(token)
    assert keys.list_keys()[0].to_dict()["owner"] == "alice"

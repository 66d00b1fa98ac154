"""API keys against a real SQLite store: hashing, expiry, revocation, rotation, scopes."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import select

from tests._support.services import free_port
from trajops.errors import (
    AuthenticationError,
    ConflictError,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from trajops.security._time import utcnow
from trajops.security.keys import ApiKeys, authorize, load_or_create_pepper, token_from_headers
from trajops.security.policy import Scope
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import ApiKey

PEPPER = b"p" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_token_is_shown_once_and_only_its_hmac_is_stored(store: Store, tmp_path: Path) -> None:
    keys = ApiKeys(store, pepper=PEPPER)
    info, token = keys.create_key(name="svc", scopes="predict,feedback")
    assert re.fullmatch(r"tjo_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert token.split("_", 2)[1] == info.id
    with store.session() as s:
        row = s.execute(select(ApiKey)).scalar_one()
        assert row.key_hash == hmac.new(PEPPER, token.encode(), hashlib.sha256).hexdigest()
    store.dispose()  # checkpoint the WAL so every byte is in files we can read
    secret = token.split("_", 2)[2].encode()
    for path in tmp_path.glob("ops.db*"):
        blob = path.read_bytes()
        assert token.encode() not in blob and secret not in blob, path
    assert keys.authenticate(token).scopes == frozenset({Scope.PREDICT, Scope.FEEDBACK})


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("not-a-key", "invalid API key"),
        ("tjo_000000000000_" + "A" * 43, "invalid API key"),
    ],
)
def test_missing_malformed_and_unknown_keys_are_401(
    store: Store, token: str | None, message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message) as err:
        ApiKeys(store, pepper=PEPPER).authenticate(token)
    assert err.value.status_code == 401


def test_a_right_id_with_a_wrong_secret_is_refused(store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER)
    _, token = keys.create_key(name="svc", scopes="predict")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        keys.authenticate(forged)
    with pytest.raises(AuthenticationError):  # another pepper: another hash
        ApiKeys(store, pepper=b"q" * 32).authenticate(token)


def test_hashes_are_compared_in_constant_time(store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER, cache_ttl_s=0)
    _, token = keys.create_key(name="svc", scopes="predict")
    with mock.patch.object(hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        keys.authenticate(token)
        with pytest.raises(AuthenticationError):
            keys.authenticate("tjo_ffffffffffff_" + "A" * 43)  # unknown id: still compared
    assert spy.call_count == 2


def test_expired_keys_are_refused_even_from_the_cache(store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER, cache_ttl_s=60)
    _, old = keys.create_key(
        name="old", scopes="predict", expires_at=utcnow() - timedelta(seconds=1)
    )
    with pytest.raises(AuthenticationError, match="expired"):
        keys.authenticate(old)
    info, soon = keys.create_key(
        name="soon", scopes="predict", expires_at=utcnow() + timedelta(milliseconds=300)
    )
    assert keys.authenticate(soon).id == info.id  # now cached for 60 s
    time.sleep(0.4)
    with pytest.raises(AuthenticationError, match=f"API key {info.id} expired"):
        keys.authenticate(soon)
    assert keys.get_key(info.id).status() == "expired"


def test_revocation_is_immediate_here_and_within_the_cache_time_elsewhere(store: Store) -> None:
    clock = Clock()
    server = ApiKeys(store, pepper=PEPPER, cache_ttl_s=5.0, clock=clock)
    admin = ApiKeys(store, pepper=PEPPER)
    info, token = admin.create_key(name="svc", scopes="predict")
    assert server.authenticate(token).id == info.id
    assert server.get_key(info.id).last_used_at is not None
    admin.revoke_key(info.id)
    assert server.authenticate(token).id == info.id  # cached: the documented <= 5 s window
    clock.now += 5.01
    with pytest.raises(AuthenticationError, match="revoked"):
        server.authenticate(token)
    info2, token2 = server.create_key(name="svc2", scopes="predict")
    server.authenticate(token2)
    server.revoke_key(info2.id)  # same process: at once, cache or not
    with pytest.raises(AuthenticationError, match="revoked"):
        server.authenticate(token2)
    assert server.revoke_key(info2.id).revoked_at is not None  # idempotent


def test_rotate_replaces_the_token_and_revokes_the_old_one(store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER)
    old, old_token = keys.create_key(
        name="svc", scopes="feedback", expires_at=utcnow() + timedelta(days=30)
    )
    new, new_token = keys.rotate_key(old.id)
    assert new.id != old.id and new_token != old_token
    assert (new.name, new.scopes) == ("svc", frozenset({Scope.FEEDBACK}))
    assert new.expires_at is not None
    assert abs((new.expires_at - new.created_at) - timedelta(days=30)) < timedelta(seconds=5)
    assert keys.authenticate(new_token).id == new.id
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.authenticate(old_token)
    assert keys.get_key(old.id).replaced_by == new.id
    with pytest.raises(ConflictError):
        keys.rotate_key(old.id)
    assert [k.status() for k in keys.list_keys()] == ["revoked", "active"]
    assert [k.id for k in keys.list_keys(include_revoked=False)] == [new.id]


def test_scopes_are_enforced_and_admin_grants_all(store: Store) -> None:
    keys = ApiKeys(store, pepper=PEPPER)
    predict, _ = keys.create_key(name="p", scopes=["predict"])
    admin, _ = keys.create_key(name="a", scopes="admin")
    authorize(predict, Scope.PREDICT)
    authorize(predict, None)
    with pytest.raises(PermissionDenied, match="lacks the feedback scope") as err:
        authorize(predict, Scope.FEEDBACK)
    assert err.value.status_code == 403
    for scope in Scope:
        authorize(admin, scope)
    with pytest.raises(ValidationError, match="unknown scope 'root'"):
        keys.create_key(name="x", scopes="predict,root")
    with pytest.raises(ValidationError, match="no scopes"):
        keys.create_key(name="x", scopes=" , ")


def test_token_is_read_from_either_header() -> None:
    assert token_from_headers({"x-api-key": "tjo_a"}) == "tjo_a"
    assert token_from_headers({"authorization": "Bearer tjo_b"}) == "tjo_b"
    assert token_from_headers({"authorization": "Basic abc"}) is None
    assert token_from_headers({}) is None


def test_pepper_file_is_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    first = load_or_create_pepper(settings)
    assert load_or_create_pepper(settings) == first and len(first) == 64
    assert os.stat(tmp_path / "home" / "api_key.pepper").st_mode & 0o777 == 0o600
    explicit = Settings(home=tmp_path / "home", api_key_pepper="x" * 20)
    assert load_or_create_pepper(explicit) == b"x" * 20


def test_an_unreachable_store_is_503_not_401() -> None:
    dead = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x", run_migrations=False)
    with pytest.raises(ServiceUnavailable, match="cannot verify the API key") as err:
        ApiKeys(dead, pepper=PEPPER).authenticate("tjo_0123456789ab_" + "A" * 43)
    assert err.value.status_code == 503

"""``trajops users`` and ``keys create --owner`` as a user runs them, on a SQLite store in a temp
home: the JSON each command prints, passwords shown once and never stored, errors by name."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_cli_security import Run, trajops

pytestmark = pytest.mark.e2e
__all__ = ["trajops"]  # the fixture, used by name

USER_KEYS = {
    "name", "role", "scopes", "source", "status", "created_at", "disabled_at", "last_login_at",
}  # fmt: skip


def test_users_lifecycle_in_json(trajops: Callable[..., Run], tmp_path: Path) -> None:
    created = trajops("users", "create", "ada", "--role", "admin", "--json")
    assert created.returncode == 0, created.stderr
    ada = json.loads(created.stdout)
    assert set(ada) == USER_KEYS | {"password"} and ada["role"] == "admin"
    assert ada["scopes"] == ["admin"] and ada["status"] == "active"
    assert len(ada["password"]) >= 16
    db = (tmp_path / "trajops.db").read_bytes()
    assert ada["password"].encode() not in db and b"$argon2id$" in db

    plain = trajops("users", "create", "olga", "--role", "operator")
    lines = plain.stdout.strip().splitlines()
    assert lines[0] == "created user olga (operator, active)" and len(lines[-1]) >= 16

    listed = json.loads(trajops("users", "list", "--json").stdout)
    assert [u["name"] for u in listed] == ["ada", "olga"]
    assert all(set(u) == USER_KEYS for u in listed)  # never a password or a hash

    role = json.loads(trajops("users", "set-role", "olga", "viewer", "--json").stdout)
    assert role["role"] == "viewer" and role["scopes"] == ["read"]
    reset = json.loads(trajops("users", "reset-password", "olga", "--json").stdout)
    assert reset["password"] != lines[-1]
    disabled = json.loads(trajops("users", "disable", "olga", "--json").stdout)
    assert disabled["status"] == "disabled" and disabled["disabled_at"]
    with sqlite3.connect(tmp_path / "trajops.db") as conn:
        events = [r[0] for r in conn.execute("SELECT event FROM audit_log ORDER BY id")]
    assert events == [
        "users.create",
        "users.create",
        "users.set_role",
        "users.reset_password",
        "users.disable",
    ]


def test_password_from_stdin_and_owned_keys(
    trajops: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough secret\n"))
    created = trajops("users", "create", "olga", "--role", "operator", "--password-stdin")
    assert created.returncode == 0 and "a long enough secret" not in created.stdout
    owned = trajops("keys", "create", "--name", "olga-ci", "--scopes", "predict", "--owner", "olga")
    assert owned.returncode == 0, owned.stderr
    keys = json.loads(trajops("keys", "list", "--json").stdout)
    assert keys[0]["owner"] == "olga"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "create", "Bad Name"), "invalid user name 'Bad Name'"),
        (("users", "create", "zed", "--role", "root"), "unknown role 'root'"),
        (("users", "disable", "ghost"), "no user named 'ghost'"),
        (("users", "set-role", "ghost", "viewer"), "no user named 'ghost'"),
        (("keys", "create", "--name", "x", "--owner", "ghost"), "no user named 'ghost'"),
    ],
)
def test_user_mistakes_exit_2_with_the_reason(
    trajops: Callable[..., Run], args: tuple[str, ...], message: str
) -> None:
    done = trajops(*args)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_the_last_admin_stays(trajops: Callable[..., Run]) -> None:
    assert trajops("users", "create", "ada", "--role", "admin").returncode == 0
    done = trajops("users", "disable", "ada")
    assert done.returncode == 2 and "last active admin" in done.stderr

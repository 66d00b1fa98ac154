"""``trajops keys | audit | privacy`` as a user runs them, on a SQLite store in a temp home.

The exit-code contract is checked in real subprocesses; the longer scenarios call the same
console entry point (``trajops.cli.main:main``) in-process, because every subprocess pays the
full CLI import (seconds on this machine).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from trajops.cli.main import main

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"tjo_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def trajops_process(home: Path, *args: str) -> Run:
    env = {**os.environ, "TRAJOPS_HOME": str(home), "COLUMNS": "200"}
    env.pop("TRAJOPS_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", "from trajops.cli.main import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def trajops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    monkeypatch.setenv("TRAJOPS_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TRAJOPS_DATABASE_URL", raising=False)

    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["trajops", *args])
        capsys.readouterr()
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return Run(int(code or 0), out.out, out.err)

    return run


@pytest.mark.slow
def test_exit_codes_in_real_processes(tmp_path: Path) -> None:
    created = trajops_process(
        tmp_path, "keys", "create", "--name", "ci", "--scopes", "predict,feedback"
    )
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert len(lines) > 1 and TOKEN.fullmatch(lines[-1])  # the key, alone on the last line
    assert TOKEN.search("\n".join(lines[:-1])) is None  # and nowhere else
    assert lines[-1].encode() not in (tmp_path / "trajops.db").read_bytes()
    assert trajops_process(tmp_path, "audit", "verify").returncode == 0
    with sqlite3.connect(tmp_path / "trajops.db") as conn:
        conn.execute("UPDATE audit_log SET route = 'x' WHERE id = 1")
    tampered = trajops_process(tmp_path, "audit", "verify")
    assert tampered.returncode == 1 and "row 1" in tampered.stderr
    bad = trajops_process(tmp_path, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 2 and "unknown scope 'root'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_keys_lifecycle(trajops: Callable[..., Run], tmp_path: Path) -> None:
    created = trajops(
        "keys", "create", "--name", "ci", "--scopes", "predict,feedback", "--expires", "30d"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert TOKEN.fullmatch(token)
    key_id = token.split("_")[1]

    listed = trajops("keys", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert entry["id"] == key_id and entry["scopes"] == ["feedback", "predict"]
    assert entry["status"] == "active" and entry["expires_at"] is not None
    assert token not in listed.stdout

    rotated = trajops("keys", "rotate", key_id)
    assert rotated.returncode == 0 and TOKEN.fullmatch(rotated.stdout.strip().splitlines()[-1])
    assert trajops("keys", "revoke", key_id).returncode == 0
    statuses = sorted(k["status"] for k in json.loads(trajops("keys", "list", "--json").stdout))
    assert statuses == ["active", "revoked"]
    assert "revoked" not in trajops("keys", "list", "--active").stdout

    past = trajops("keys", "create", "--name", "x", "--expires", "2001-01-01")
    assert past.returncode == 2 and "in the past" in past.stderr
    missing = trajops("keys", "revoke", "ffffffffffff")
    assert missing.returncode == 2 and "no API key" in missing.stderr


def test_audit_and_privacy_commands(trajops: Callable[..., Run], tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        assert trajops("keys", "create", "--name", name).returncode == 0
    erased = trajops("privacy", "erase", "--subject", "ped-42")
    assert erased.returncode == 0 and "audit row 4" in erased.stdout
    exported = trajops("privacy", "export", "--subject", "ped-42")
    assert exported.returncode == 0 and len(json.loads(exported.stdout)["erasures"]) == 1
    purged = trajops("privacy", "purge", "--older-than", "30d")
    assert purged.returncode == 0 and "deleted 0 predictions" in purged.stdout

    ok = trajops("audit", "verify")
    assert ok.returncode == 0 and "5 rows verified" in ok.stdout
    head = ok.stdout.strip().splitlines()[-1].removeprefix("head: ")
    out = tmp_path / "audit.jsonl"
    assert trajops("audit", "export", "--since", "1d", "--output", str(out)).returncode == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["event"] for r in rows] == ["keys.create"] * 3 + ["privacy.erase", "retention.purge"]
    assert "ped-42" not in out.read_text()
    assert len(trajops("audit", "export", "--since", "2000-01-01").stdout.splitlines()) == 5

    with sqlite3.connect(tmp_path / "trajops.db") as conn:
        conn.execute("UPDATE audit_log SET status = 1 WHERE id = 2")
    tampered = trajops("audit", "verify")
    assert tampered.returncode == 1
    assert "row 2" in tampered.stderr and "modified" in tampered.stderr

    with sqlite3.connect(tmp_path / "trajops.db") as conn:
        conn.execute("UPDATE audit_log SET status = 0 WHERE id = 2")
        conn.execute("DELETE FROM audit_log WHERE id = 5")
    # a cut tail: caught by default, against the head the first verify checkpointed outside
    # the store (and by an explicitly recorded head too)
    cut = trajops("audit", "verify")
    assert cut.returncode == 1 and "row 5" in cut.stderr and "truncated" in cut.stderr
    assert trajops("audit", "verify", "--expect", head).returncode == 1
    bad_since = trajops("audit", "export", "--since", "yesterday")
    assert bad_since.returncode == 2 and "invalid since" in bad_since.stderr

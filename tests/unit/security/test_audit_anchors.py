"""Signed checkpoints outside the store catch what the chain alone cannot: a cut tail, a
deleted chain, a chain recomputed from scratch, and an edited checkpoint file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests._support.audit import audit_records
from trajops.privacy import Pseudonymiser
from trajops.security.audit import append_audit, verify_and_checkpoint, verify_chain
from trajops.security.audit_anchors import AnchorLog
from trajops.security.audit_chain import GENESIS, row_hash
from trajops.store import Store
from trajops.store.models import AuditEntry

PSEUDO = Pseudonymiser(b"k" * 32)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


@pytest.fixture
def anchors(tmp_path: Path) -> AnchorLog:
    return AnchorLog(tmp_path / "elsewhere" / "anchors.jsonl", b"a" * 32)


def _checkpointed(store: Store, anchors: AnchorLog, n: int) -> None:
    append_audit(store, audit_records(n), pseudonymise=PSEUDO)
    assert verify_and_checkpoint(store, anchors).ok
    assert anchors.last() is not None and anchors.last().id == n  # type: ignore[union-attr]


def test_a_cut_tail_passes_the_chain_but_not_the_checkpoints(
    store: Store, anchors: AnchorLog
) -> None:
    _checkpointed(store, anchors, 8)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id >= 5"))
    assert verify_chain(store).ok  # the control: the chain alone is consistent
    result = verify_chain(store, anchors=anchors)
    assert not result.ok and result.first_bad_id == 8 and "missing" in (result.reason or "")


def test_a_deleted_chain_is_caught(store: Store, anchors: AnchorLog) -> None:
    _checkpointed(store, anchors, 3)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert verify_chain(store).ok
    assert not verify_chain(store, anchors=anchors).ok


def test_a_recomputed_chain_is_caught(store: Store, anchors: AnchorLog) -> None:
    _checkpointed(store, anchors, 5)
    with store.session() as s:  # rewrite row 2 and recompute every hash after it
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        previous = GENESIS
        for row in rows:
            if row.id == 2:
                row.status = 204
            row.prev_hash = previous
            columns = {c.key: getattr(row, c.key) for c in AuditEntry.__table__.columns}
            row.hash = previous = row_hash(columns)
    assert verify_chain(store).ok  # consistent with itself
    result = verify_chain(store, anchors=anchors)
    assert not result.ok and "different hash" in (result.reason or "")


def test_an_edited_checkpoint_file_is_caught(store: Store, anchors: AnchorLog) -> None:
    _checkpointed(store, anchors, 4)
    lines = anchors.path.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"id": 2}
    anchors.path.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    result = verify_chain(store, anchors=anchors)
    assert not result.ok and "tampered" in (result.reason or "")


def test_checkpoints_are_appended_only_when_the_head_moves(
    store: Store, anchors: AnchorLog
) -> None:
    _checkpointed(store, anchors, 2)
    assert verify_and_checkpoint(store, anchors).ok
    append_audit(store, audit_records(1), pseudonymise=PSEUDO)
    assert verify_and_checkpoint(store, anchors).ok
    assert [c.id for c in anchors.checkpoints()] == [2, 3]
    assert oct(anchors.path.stat().st_mode & 0o777) == "0o600"

"""The audit chain's inserts on a real SQLite store: replays inserted once, the stored-id check."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from tests._support.audit import audit_records
from trajops._ids import ordered_hex, random_hex
from trajops.logpipe import LogWriter
from trajops.privacy import Pseudonymiser
from trajops.security.audit import audit_rows, verify_chain
from trajops.security.audit_chain import _stored_ids, insert_chained
from trajops.store import Store

PSEUDO = Pseudonymiser(b"k" * 32)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_replayed_rows_are_inserted_once(store: Store, tmp_path: Path) -> None:
    rows = audit_rows(audit_records(3), pseudonymise=PSEUDO)
    with store.session() as s:
        assert len(insert_chained(s, rows)) == 3
    with store.session() as s:
        assert insert_chained(s, rows + audit_rows(audit_records(1))) != []
    writer = LogWriter(
        store, tmp_path / "spool", hooks={"audit_log": lambda s, r: insert_chained(s, r) and []}
    )
    writer.start()
    writer.submit("audit_log", rows)  # a replay of already stored rows
    writer.close()
    result = verify_chain(store)
    assert (result.ok, result.checked) == (True, 4)


def test_stored_ids_reads_a_range_for_a_live_batch_and_a_list_otherwise(store: Store) -> None:
    ids = [ordered_hex() for _ in range(6)]  # time-ordered, as the writers make them
    rows = audit_rows(audit_records(3), pseudonymise=PSEUDO)
    for row, record_id in zip(rows, (ids[0], ids[2], ids[4]), strict=True):
        row["record_id"] = record_id  # stored: another writer's rows around ours
    statements: list[str] = []
    event.listens_for(store.engine, "before_cursor_execute")(
        lambda _c, _cur, statement, *_a: statements.append(statement)
    )
    with store.session() as s:
        insert_chained(s, rows)
        statements.clear()
        # in range: the stored id found, another writer's id between ours not reported
        assert _stored_ids(s, {ids[1], ids[2], ids[3]}) == {ids[2]}
        assert _stored_ids(s, {ids[1], ids[3]}) == set()
        assert all("BETWEEN" in st and " IN " not in st for st in statements)
        statements.clear()
        # random ids (a client's, an old spool's), or UUIDv7s far apart: looked up by list
        assert _stored_ids(s, {random_hex(), ids[0]}) == {ids[0]}
        old = f"{int(ids[5][:12], 16) - 60_000:012x}{ids[5][12:]}"  # a minute earlier
        assert _stored_ids(s, {old, ids[4]}) == {ids[4]}
        assert len(statements) == 2 and all(" IN " in st for st in statements)

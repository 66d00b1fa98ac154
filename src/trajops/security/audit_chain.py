"""The audit trail's hash chain: the canonical text of a row, its hash, and linked inserts.

Row ``n`` stores ``hash = sha256(prev_hash + canonical JSON of row n)`` where ``prev_hash`` is
row ``n-1``'s hash (``GENESIS`` for the first row, or the anchor's hash after a retention purge);
``id`` is the row's position in the chain.

:func:`insert_chained` links a batch inside the inserting transaction and under a lock
(PostgreSQL ``pg_advisory_xact_lock``; SQLite takes its single write lock first), so several
API replicas appending at once still form one valid chain, and a replayed batch (a spool
written again) is inserted once. Records, verification and export are in
:mod:`trajops.security.audit`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from trajops._ids import ordered_hex_ms
from trajops.security._time import utc
from trajops.store.db import insert_rows
from trajops.store.models import AuditAnchor, AuditEntry

GENESIS = "0" * 64
LOCK_ID = 0x74726A6F_61756474  # "trjoaudt": one advisory lock for the whole chain
TABLE = "audit_log"
_AUDIT_TABLE: Table = AuditEntry.__table__  # type: ignore[assignment]  # for Core inserts
HASHED_FIELDS = (
    "id",
    "record_id",
    "created_at",
    "event",
    "key_id",
    "route",
    "method",
    "status",
    "model_version",
    "request_id",
    "payload_digest",
    "latency_ms",
    "client_key",
    "details",
    "prev_hash",
)


def _zulu(moment: datetime) -> str:
    """``moment`` as ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, the chain's stored form.

    A naive ``moment`` is taken as UTC. The text is part of every row's hash, so it must never
    change: microseconds always, ``Z`` for the zone, and a year before 1000 as ``strftime``
    writes it (``isoformat`` would pad it to four digits).
    """
    moment = utc(moment)
    if moment.year < 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def _canonical(row: Mapping[str, Any]) -> str:
    values: dict[str, Any] = {name: row.get(name) for name in HASHED_FIELDS}
    moment = row["created_at"]
    if isinstance(moment, str):  # an exported row: verifiable offline
        moment = datetime.fromisoformat(moment)
    values["created_at"] = _zulu(moment)
    values["latency_ms"] = float(values["latency_ms"] or 0.0)
    values["id"] = int(row["id"])
    values["status"] = int(row["status"])
    # orjson with sorted keys writes the same compact JSON as json.dumps(sort_keys=True,
    # separators=(",", ":"), ensure_ascii=False): the hashed text of every stored row. It
    # runs on the log writer's thread, which shares the interpreter lock with the event loop.
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def row_hash(row: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the row)`` (the row includes ``prev_hash``)."""
    return hashlib.sha256((row["prev_hash"] + _canonical(row)).encode()).hexdigest()


# The statements every chained batch runs, as driver SQL (sqlite3 and psycopg alike: no
# parameters, or a SQLite-only range below): they are a log-writer transaction's fixed cost,
# so they skip the ORM session's per-statement compilation and result wrapping
# (docs/performance.md has the measurements).
_LOCK_SQL = {
    "postgresql": f"SELECT pg_advisory_xact_lock({LOCK_ID})",
    # SQLite: a write statement first makes this transaction the single writer, so the head
    # read below cannot go stale before the insert.
    "sqlite": f"UPDATE {AuditAnchor.__tablename__} SET id = id WHERE 1 = 0",
}
_HEAD_SQL = f"SELECT id, hash FROM {TABLE} ORDER BY id DESC LIMIT 1"
_RANGE_SQL = f"SELECT record_id FROM {TABLE} WHERE record_id BETWEEN ? AND ?"  # SQLite's style


def lock_chain(session: Session) -> None:
    """Serialise chain writers until the session's transaction ends."""
    connection = session.connection()
    connection.exec_driver_sql(_LOCK_SQL.get(connection.dialect.name, _LOCK_SQL["sqlite"]))


def latest_anchor(session: Session) -> AuditAnchor | None:
    return session.scalars(
        select(AuditAnchor).order_by(AuditAnchor.last_purged_id.desc()).limit(1)
    ).first()


def chain_head(session: Session) -> tuple[int, str]:
    """``(id, hash)`` of the last row, of the anchor when everything was purged, or ``(0, GENESIS)``."""
    head = session.connection().exec_driver_sql(_HEAD_SQL).first()
    if head is not None:
        return int(head[0]), str(head[1])
    anchor = latest_anchor(session)
    if anchor is not None:
        return int(anchor.last_purged_id), anchor.last_purged_hash
    return 0, GENESIS


_RANGE_SPAN_MS = 10_000


def _stored_ids(session: Session, wanted: set[str]) -> set[str]:
    """Those of ``wanted`` record ids already in the chain (a replay; empty on the live path).

    Record ids are UUIDv7s (:func:`~trajops._ids.ordered_hex`): a batch's ids fall within a
    few milliseconds of each other. On SQLite one index range between the smallest and the
    largest is read then (it may return other writers' ids of the same moments, which the set
    intersection drops), instead of expanding the batch into an ``IN`` list of hundreds of
    parameters. Ids that are not UUIDv7s, or that span more than ``_RANGE_SPAN_MS``, are
    looked up by list, and so is every batch on PostgreSQL, where the range would compare in
    the column's collation rather than in Python's order.
    """
    low, high = min(wanted), max(wanted)
    start, end = ordered_hex_ms(low), ordered_hex_ms(high)
    connection = session.connection()
    if (
        start is not None
        and end is not None
        and end - start <= _RANGE_SPAN_MS
        and connection.dialect.name == "sqlite"  # BINARY: the order of Python's min/max
    ):
        in_range = connection.exec_driver_sql(_RANGE_SQL, (low, high)).scalars()
        return wanted.intersection(in_range)
    column = AuditEntry.record_id
    return set(session.scalars(select(column).where(column.in_(wanted))))


def insert_chained(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lock the chain, skip rows already stored (replay), link and insert the rest; returns them."""
    lock_chain(session)
    wanted = {r["record_id"] for r in rows}
    stored = _stored_ids(session, wanted)
    last_id, prev = chain_head(session)
    chained: list[dict[str, Any]] = []
    for row in rows:
        if row["record_id"] in stored:
            continue
        stored.add(row["record_id"])
        last_id += 1
        new = {**row, "id": last_id, "prev_hash": prev, "created_at": utc(row["created_at"])}
        new["details"] = dict(new.get("details") or {})
        new["hash"] = prev = row_hash(new)
        chained.append(new)
    if chained:
        # A plain insert: a conflict must fail the batch (and spool it), never drop a row.
        insert_rows(session, _AUDIT_TABLE, chained, skip_conflicts=False)
    return chained

"""Hash-chained, append-only audit trail of every API request and administrative action.

Row ``n`` stores ``hash = sha256(prev_hash + canonical JSON of row n)`` where ``prev_hash`` is
row ``n-1``'s hash (``GENESIS`` for the first row, or the anchor's hash after a retention purge);
``id`` is the row's position in the chain. Editing a row breaks its own hash, deleting one
leaves a gap in the ids: :func:`verify_chain` names the first bad row.

Rows travel like the prediction log, through the lossless :class:`~trajops.store.LogWriter`
(spooled while the database is down). The chain is computed when a batch is inserted, inside the
inserting transaction and under a lock (PostgreSQL ``pg_advisory_xact_lock``; SQLite takes its
single write lock first), so several API replicas appending at once still form one valid chain.
Register :data:`AUDIT_HOOKS` with the writer.

Client addresses are never stored: ``client_key`` is the keyed pseudonym of the address
(namespace ``client``), enough to correlate abuse, useless without the pseudonym key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from trajops._ids import ordered_hex, ordered_hex_ms
from trajops._timetext import UtcText
from trajops.privacy.pseudonym import Pseudonymiser
from trajops.security._time import utc, utcnow
from trajops.store.bulk import bulk_insert
from trajops.store.db import Store
from trajops.store.models import AuditAnchor, AuditEntry
from trajops.store.writer import InsertHook

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
_LIMITS = {
    "event": 64,
    "key_id": 32,
    "route": 300,
    "method": 16,
    "model_version": 32,
    "request_id": 64,
}


def digest_payload(body: bytes) -> str:
    """sha256 hex digest of a request body (the body itself is never stored in the audit)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One audited action, as the middleware or a CLI command sees it.

    ``client_address`` is the raw address; :func:`audit_rows` replaces it by a pseudonym.
    """

    route: str
    method: str
    status: int
    latency_ms: float = 0.0
    key_id: str | None = None
    request_id: str | None = None
    model_version: str | None = None
    payload_digest: str | None = None
    client_address: str | None = None
    event: str = "http"
    details: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)


def audit_row(
    *,
    route: str,
    method: str,
    status: int,
    latency_ms: float = 0.0,
    key_id: str | None = None,
    request_id: str | None = None,
    model_version: str | None = None,
    payload_digest: str | None = None,
    client_key: str | None = None,
    event: str = "http",
    details: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """One row for ``LogWriter.submit("audit_log", ...)``; chain columns are added at insert time.

    ``client_key`` is already a pseudonym. The request path builds rows with this directly
    (no :class:`AuditRecord` per request); :func:`audit_rows` converts records.
    """
    row: dict[str, Any] = {
        "record_id": ordered_hex(),  # a UUIDv7: the unique index grows at its end
        "created_at": utcnow() if created_at is None else utc(created_at),
        "event": event,
        "key_id": key_id,
        "route": route,
        "method": method.upper(),
        "status": int(status),
        "model_version": model_version,
        "request_id": request_id,
        "payload_digest": payload_digest,
        "latency_ms": round(float(latency_ms), 3),
        "client_key": client_key,
        "details": dict(details) if details else {},
    }
    for name, limit in _LIMITS.items():
        value = row[name]
        if isinstance(value, str) and len(value) > limit:
            row[name] = value[:limit]  # a too-long value must not poison the spool
    return row


def audit_rows(
    records: Iterable[AuditRecord], *, pseudonymise: Pseudonymiser | None = None
) -> list[dict[str, Any]]:
    """Rows for ``LogWriter.submit("audit_log", ...)``; chain columns are added at insert time.

    Args:
        records: what happened.
        pseudonymise: keyed pseudonymiser for client addresses; without one, addresses are
            dropped (never stored raw).
    """
    return [
        audit_row(
            route=r.route,
            method=r.method,
            status=r.status,
            latency_ms=r.latency_ms,
            key_id=r.key_id,
            request_id=r.request_id,
            model_version=r.model_version,
            payload_digest=r.payload_digest,
            client_key=(
                pseudonymise(r.client_address, namespace="client")
                if r.client_address and pseudonymise is not None
                else None
            ),
            event=r.event,
            details=r.details,
            created_at=r.created_at,
        )
        for r in records
    ]


# --- the chain -------------------------------------------------------------------------
_ZULU = UtcText("T", "Z")


def _zulu(moment: datetime) -> str:
    """``moment`` (aware) as ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, the chain's stored form."""
    fast = _ZULU(moment)  # the writer's case: aware UTC, the second's text cached
    if fast is not None:
        return fast
    moment = utc(moment)
    if moment.year < 1000:  # strftime does not pad %Y; isoformat does
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drops "+00:00"; 5x faster


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
    # separators=(",", ":"), ensure_ascii=False), four times faster (the writer thread shares
    # the GIL with the event loop).
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def row_hash(row: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the row)`` (the row includes ``prev_hash``)."""
    return hashlib.sha256((row["prev_hash"] + _canonical(row)).encode()).hexdigest()


# The statements every chained batch runs, as driver SQL (sqlite3 and psycopg alike: no
# parameters, or a SQLite-only range below). Through the session each one built an execution
# context, looked up its compiled form and wrapped its result: 70-360 µs a statement against
# a few µs for the driver, most of a log-writer transaction's fixed cost (docs/performance.md).
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
    parameters: 2.2 µs a row against 1.0 µs when every id of the range is stored. Ids that
    are not UUIDv7s, or that span more than ``_RANGE_SPAN_MS``, are looked up by list, and
    so is every batch on PostgreSQL, where the range would compare in the column's collation
    rather than in Python's order.
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
        bulk_insert(session, _AUDIT_TABLE, chained, skip_conflicts=False)
    return chained


def _writer_hook(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    insert_chained(session, rows)
    return []  # inserted here; nothing left for the writer's generic insert


AUDIT_HOOKS: dict[str, InsertHook] = {TABLE: _writer_hook}
"""Pass as ``LogWriter(..., hooks=AUDIT_HOOKS)`` so audit rows are chained when inserted."""


def append_audit(
    store: Store, records: Iterable[AuditRecord], *, pseudonymise: Pseudonymiser | None = None
) -> list[int]:
    """Write audit records now (CLI and admin actions); returns their chain ids."""
    with store.session() as session:
        return [
            r["id"] for r in insert_chained(session, audit_rows(records, pseudonymise=pseudonymise))
        ]


# --- verification and export -----------------------------------------------------------
@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a chain check; ``first_bad_id`` names the first edited or missing row."""

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str | None
    first_bad_id: int | None = None
    reason: str | None = None


def verify_rows(
    rows: Iterable[Mapping[str, Any]], *, start_id: int = 0, start_hash: str = GENESIS
) -> VerifyResult:
    """Check rows (ordered by id) against the chain that starts after ``(start_id, start_hash)``."""
    expected_id, prev, checked = start_id + 1, start_hash, 0
    head_id: int | None = start_id or None
    head_hash: str | None = start_hash if start_id else None

    def bad(row_id: int, reason: str) -> VerifyResult:
        return VerifyResult(False, checked, head_id, head_hash, row_id, reason)

    for row in rows:
        row_id = int(row["id"])
        if row_id != expected_id:
            if row_id < expected_id:
                return bad(row_id, f"row {row_id} is out of order or duplicated")
            missing = (
                f"row {expected_id}"
                if row_id == expected_id + 1
                else f"rows {expected_id}..{row_id - 1}"
            )
            return bad(expected_id, f"{missing} missing (deleted) before row {row_id}")
        if row_hash(row) != row["hash"]:
            return bad(row_id, f"row {row_id} was modified (its content does not match its hash)")
        if row["prev_hash"] != prev:
            return bad(
                row_id, f"row {row_id} does not link to row {row_id - 1} (prev_hash mismatch)"
            )
        prev, expected_id, checked = row["hash"], row_id + 1, checked + 1
        head_id, head_hash = row_id, prev
    return VerifyResult(True, checked, head_id, head_hash)


def _failed(result: VerifyResult, row_id: int, reason: str) -> VerifyResult:
    return VerifyResult(False, result.checked, result.head_id, result.head_hash, row_id, reason)


def _columns(entry: AuditEntry) -> dict[str, Any]:
    return {c.key: getattr(entry, c.key) for c in AuditEntry.__table__.columns}


def verify_chain(
    store: Store, *, expect: tuple[int, str] | None = None, batch_size: int = 5000
) -> VerifyResult:
    """Verify the whole stored chain (from the latest retention anchor, if any).

    Args:
        store: the operational store.
        expect: an externally recorded ``(id, hash)`` (e.g. the head printed by an earlier
            verify); detects a truncated tail or a chain rewritten from scratch.
        batch_size: rows fetched per round trip.
    """
    with store.session() as session:
        anchor = latest_anchor(session)
        start_id, start_hash = (
            (int(anchor.last_purged_id), anchor.last_purged_hash) if anchor else (0, GENESIS)
        )
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.id > start_id)
            .order_by(AuditEntry.id)
            .execution_options(yield_per=batch_size)
        )
        confirmed = anchor is None
        seen: dict[int, str] = {}

        def rows() -> Iterator[dict[str, Any]]:
            nonlocal confirmed
            for entry in session.scalars(stmt):
                row = _columns(entry)
                if expect is not None and row["id"] == expect[0]:
                    seen[row["id"]] = row["hash"]
                if (
                    anchor is not None
                    and row["event"] == "retention.purge"
                    and row["details"].get("anchor_id") == anchor.last_purged_id
                    and row["details"].get("anchor_hash") == anchor.last_purged_hash
                ):
                    confirmed = True
                yield row

        result = verify_rows(rows(), start_id=start_id, start_hash=start_hash)
    if not result.ok:
        return result
    if not confirmed:
        return _failed(
            result,
            start_id + 1,
            f"the retention anchor at row {start_id} is not confirmed by a purge record in the chain",
        )
    if expect is not None and expect[0] > start_id and seen.get(expect[0]) != expect[1]:
        state = "has a different hash" if expect[0] in seen else "is missing (truncated chain?)"
        return _failed(result, expect[0], f"expected row {expect[0]} {state}")
    return result


def export_audit(
    store: Store, *, since: datetime, until: datetime | None = None, batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Audit rows created in ``[since, until)``, oldest first, as JSON-ready dicts (with hashes)."""
    stmt = select(AuditEntry).where(AuditEntry.created_at >= since).order_by(AuditEntry.id)
    if until is not None:
        stmt = stmt.where(AuditEntry.created_at < until)
    with store.session() as session:
        for entry in session.scalars(stmt.execution_options(yield_per=batch_size)):
            row = _columns(entry)
            row["created_at"] = utc(row["created_at"]).isoformat()
            yield row

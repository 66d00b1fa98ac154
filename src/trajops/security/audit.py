"""Hash-chained, append-only audit trail of every API request and administrative action.

Every row is linked to the one before it by a hash (:mod:`trajops.security.audit_chain`).
Editing a row breaks its own hash, deleting one leaves a gap in the ids: :func:`verify_chain`
names the first bad row.

Rows travel like the prediction log, through the lossless log writer (spooled while the
database is down). The chain is computed when a batch is inserted, inside the inserting
transaction and under a lock, so several API replicas appending at once still form one valid
chain. Register :data:`AUDIT_HOOKS` with the writer.

Client addresses are never stored: ``client_key`` is the keyed pseudonym of the address
(namespace ``client``, e.g. by :class:`trajops.privacy.Pseudonymiser`), enough to correlate
abuse, useless without the pseudonym key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from trajops._ids import ordered_hex
from trajops.security._time import utc, utcnow
from trajops.security.audit_anchors import AnchorLog
from trajops.security.audit_chain import GENESIS, TABLE, insert_chained, latest_anchor, row_hash
from trajops.store.db import Store
from trajops.store.models import AuditEntry

_LIMITS = {
    "event": 64,
    "key_id": 32,
    "route": 300,
    "method": 16,
    "model_version": 32,
    "request_id": 64,
}


class PseudonymFunction(Protocol):
    """A keyed pseudonym function (:class:`trajops.privacy.Pseudonymiser` is one)."""

    def __call__(self, identifier: str, *, namespace: str = ...) -> str: ...


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
    records: Iterable[AuditRecord], *, pseudonymise: PseudonymFunction | None = None
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


def _writer_hook(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    insert_chained(session, rows)
    return []  # inserted here; nothing left for the writer's generic insert


AuditHook = Callable[[Session, list[dict[str, Any]]], list[dict[str, Any]]]
"""The log writer's per-table insert hook: rows in, the rows left for its generic insert out."""

AUDIT_HOOKS: dict[str, AuditHook] = {TABLE: _writer_hook}
"""Pass as ``LogWriter(..., hooks=AUDIT_HOOKS)`` so audit rows are chained when inserted."""


def append_audit(
    store: Store, records: Iterable[AuditRecord], *, pseudonymise: PseudonymFunction | None = None
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
    store: Store,
    *,
    expect: tuple[int, str] | None = None,
    anchors: AnchorLog | None = None,
    batch_size: int = 5000,
) -> VerifyResult:
    """Verify the whole stored chain (from the latest retention anchor, if any).

    Args:
        store: the operational store.
        expect: an externally recorded ``(id, hash)`` (e.g. the head printed by an earlier
            verify); detects a truncated tail or a chain rewritten from scratch.
        anchors: the signed checkpoints kept outside the store; each one past the retention
            anchor must be a stored row with the same hash (same checks as ``expect``).
        batch_size: rows fetched per round trip.
    """
    try:
        checkpoints = {c.id: c.hash for c in anchors.checkpoints()} if anchors else {}
    except ValueError as exc:
        return VerifyResult(
            False, 0, None, None, None, f"the checkpoint file was tampered with: {exc}"
        )
    if expect is not None:
        checkpoints[expect[0]] = expect[1]
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
                if row["id"] in checkpoints:
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
    for row_id, anchored in sorted(checkpoints.items()):
        if row_id > start_id and seen.get(row_id) != anchored:
            state = "has a different hash" if row_id in seen else "is missing (truncated chain?)"
            return _failed(result, row_id, f"checkpointed row {row_id} {state}")
    return result


def verify_and_checkpoint(
    store: Store, anchors: AnchorLog, *, expect: tuple[int, str] | None = None
) -> VerifyResult:
    """:func:`verify_chain` against ``anchors``; an intact chain's head is checkpointed, so the
    next verification notices a truncation or rewrite of everything verified now."""
    result = verify_chain(store, expect=expect, anchors=anchors)
    if result.ok and result.head_id is not None and result.head_hash is not None:
        anchors.append(result.head_id, result.head_hash)
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

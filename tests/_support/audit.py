"""Audit records for the audit-trail and retention tests: one client, one key, distinct requests."""

from __future__ import annotations

from datetime import datetime

from trajops.security.audit import AuditRecord, digest_payload


def audit_records(
    n: int, *, at: datetime | None = None, client: str = "203.0.113.9"
) -> list[AuditRecord]:
    """``n`` audited prediction requests from ``client`` (created now, or ``at``)."""
    return [
        AuditRecord(
            route="/v1/predict",
            method="post",
            status=200,
            latency_ms=1.0 + i / 7,
            key_id="abcdef012345",
            request_id=f"req-{i}",
            model_version="3",
            payload_digest=digest_payload(b'{"agents": []}'),
            client_address=client,
            **({"created_at": at} if at else {}),
        )
        for i in range(n)
    ]

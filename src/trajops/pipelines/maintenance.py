"""Maintenance tasks: audit-chain verification and the retention purge."""

from __future__ import annotations

from typing import Any

from trajops.errors import TrajopsError
from trajops.pipelines._workspace import pipeline_settings


class AuditChainBroken(TrajopsError):
    """The audit trail's hash chain does not verify: a row was edited, deleted or reordered."""

    status_code = 409
    code = "audit_chain_broken"


def verify_audit() -> dict[str, Any]:
    """Verify the whole audit hash chain (from the latest retention anchor) and its signed
    checkpoints, and checkpoint its head.

    Returns:
        ``checked`` rows and the chain head (``head_id``, ``head_hash``) to record elsewhere.

    Raises:
        AuditChainBroken: naming the first bad row and why.
    """
    from trajops.security.audit import verify_and_checkpoint
    from trajops.security.audit_anchors import AnchorLog
    from trajops.store.db import Store

    settings = pipeline_settings()
    store = Store(settings.resolved_database_url)
    try:
        result = verify_and_checkpoint(store, AnchorLog.from_settings(settings))
    finally:
        store.dispose()
    if not result.ok:
        raise AuditChainBroken(
            f"audit chain TAMPERED at row {result.first_bad_id}: {result.reason} "
            f"({result.checked} rows verified before it)",
            details=[{"loc": ["audit", str(result.first_bad_id)], "msg": str(result.reason)}],
        )
    return {"checked": result.checked, "head_id": result.head_id, "head_hash": result.head_hash}


def purge_retention() -> dict[str, Any]:
    """Delete predictions, feedback and audit rows past their retention periods (audited).

    Returns:
        What was deleted: counts, cut-offs and the new chain anchor, if any.
    """
    from trajops.privacy.retention import purge_expired

    return purge_expired(pipeline_settings()).to_dict()

"""Security: API keys, route scopes, rate limits and the hash-chained audit trail."""

from trajops.security.audit import (
    AUDIT_HOOKS,
    AuditRecord,
    VerifyResult,
    append_audit,
    audit_rows,
    digest_payload,
    verify_chain,
)
from trajops.security.keys import ApiKeys, KeyInfo, authorize, token_from_headers
from trajops.security.policy import Access, Scope, required_access
from trajops.security.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    enforce,
    rate_limiter_from_settings,
)

__all__ = [
    "AUDIT_HOOKS",
    "Access",
    "ApiKeys",
    "AuditRecord",
    "KeyInfo",
    "LocalRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "Scope",
    "VerifyResult",
    "append_audit",
    "audit_rows",
    "authorize",
    "digest_payload",
    "enforce",
    "rate_limiter_from_settings",
    "required_access",
    "token_from_headers",
    "verify_chain",
]

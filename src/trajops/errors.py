"""Domain errors. Each carries an HTTP status and a stable code; the API edge renders them once."""

from __future__ import annotations

from typing import Any


class TrajopsWarning(UserWarning):
    """Warnings raised by trajops itself (treated as errors in the test suite)."""


class TrajopsError(Exception):
    """Base class of every error trajops raises on purpose.

    Attributes:
        status_code: HTTP status the API edge answers with.
        code: stable machine-readable identifier.
        details: list of ``{"loc": [...], "msg": str}`` entries pointing at what is wrong.
    """

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(TrajopsError):
    status_code = 500
    code = "config_error"


class ValidationError(TrajopsError):
    """Input that does not meet the contract (a user mistake)."""

    status_code = 422
    code = "validation_error"


class DataError(ValidationError):
    """A data file or frame that fails validation: names file, line, column and reason."""

    code = "data_error"


class NotEnoughData(ValidationError):
    """Too little data for the computation asked for (e.g. served inputs for a drift run):
    a 422 to a caller, an expected "nothing to do yet" to a scheduled job."""


class NotFoundError(TrajopsError):
    status_code = 404
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class ConflictError(TrajopsError):
    status_code = 409
    code = "conflict"


class PromotionRefused(ConflictError):
    """A gated promotion whose checks failed; ``details`` names each failed check."""

    code = "promotion_refused"


class PayloadTooLarge(TrajopsError):
    status_code = 413
    code = "payload_too_large"


class ServiceUnavailable(TrajopsError):
    """A dependency (tracking server, database, model) is not reachable or not ready."""

    status_code = 503
    code = "service_unavailable"


class TrackingUnavailable(ServiceUnavailable):
    code = "tracking_unavailable"


class ModelLoadError(ServiceUnavailable):
    code = "model_load_error"


class AuthenticationError(TrajopsError):
    """A missing, malformed, unknown, expired or revoked API key."""

    status_code = 401
    code = "unauthenticated"


class PermissionDenied(TrajopsError):
    """A valid API key without the scope the route requires."""

    status_code = 403
    code = "permission_denied"


class RateLimited(TrajopsError):
    """Too many requests for one API key; ``retry_after_s`` says when to try again."""

    status_code = 429
    code = "rate_limited"

    def __init__(
        self, message: str, *, retry_after_s: float, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(
            message,
            details=details or [{"loc": ["retry_after_s"], "msg": f"{retry_after_s:.3f}"}],
        )
        self.retry_after_s = retry_after_s

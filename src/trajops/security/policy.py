"""Which API key scope each route needs: one table, read by the serving edge's auth dependency.

Decisions (documented in ``docs/compliance.md``):

* Public (no key): ``/healthz``, ``/readyz``; ``/metrics`` only when ``metrics_public`` is set.
* ``/v1/predict`` needs ``predict``; naming a model other than an exposed one
  (``exposed_models``, the running experiment's arms) also needs ``pin``;
  ``/v1/feedback`` needs ``feedback``; ``/v1/tracks`` (forecasts, and their scoring) needs
  ``predict``.
* ``/v1/models…``: reads (GET/HEAD/OPTIONS) need ``predict`` or ``read`` (clients may see which
  model serves them); writes (promote, roll back, reload, default) need ``operate``.
* ``/v1/experiments…`` and ``/v1/monitoring…``: ``read`` for reads, ``operate`` for writes
  (operational and business data; least privilege: ``predict`` keys see none of it).
* ``/v1/batch-jobs…``, ``/v1/users…`` and ``/v1/keys…``: ``admin`` (jobs read and write
  server-side files; people and keys are the admin's).
* ``/v1/auth/login`` and the single sign-on redirects (``/v1/auth/oidc…``): public (that is
  where a person gets a session); the rest of ``/v1/auth`` (``me``, ``logout``): any valid
  key or session.
* ``/metrics``: ``read`` unless ``metrics_public``.
* ``/docs`` (Swagger UI and its local assets) and ``/openapi.json``: public (the contract is
  not secret, and a browser must load both before Swagger's *Authorize* button takes a key).
* Anything else: ``admin`` (deny by default, so a new route is never public by accident).
* ``admin`` implies every other scope; ``operate`` implies ``read``.

People get scopes from their role (:data:`ROLE_SCOPES`): a ``viewer`` reads, an ``operator``
also acts on models and experiments, an ``admin`` does everything, including managing users
and keys. A person's session and a key they own carry the same kind of scopes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from trajops.errors import ValidationError


class Scope(StrEnum):
    """What an API key may do."""

    PREDICT = "predict"
    PIN = "pin"
    """Name any registered version in a prediction request (``predict`` alone reaches only
    the models the operator exposes: ``exposed_models`` and the running experiment's arms)."""
    FEEDBACK = "feedback"
    READ = "read"
    """Read models, experiments, monitoring and metrics (what a dashboard viewer sees)."""
    OPERATE = "operate"
    """Promote and roll back models, start and stop experiments, run drift checks."""
    ADMIN = "admin"


class Role(StrEnum):
    """What a person may do (a user's role; see :data:`ROLE_SCOPES`)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.OPERATOR: frozenset({Scope.READ, Scope.OPERATE}),
    Role.ADMIN: frozenset({Scope.ADMIN}),
}
_IMPLIED: dict[Scope, frozenset[Scope]] = {Scope.OPERATE: frozenset({Scope.READ})}


def grantable_scopes(role: Role) -> frozenset[Scope]:
    """The scopes a key owned by a person of ``role`` may carry: what the role reads and does,
    plus the machine scopes (predict, pin, feedback) for an operator."""
    if role is Role.ADMIN:
        return frozenset(Scope)
    if role is Role.OPERATOR:
        return ROLE_SCOPES[role] | {Scope.PREDICT, Scope.PIN, Scope.FEEDBACK}
    return ROLE_SCOPES[role]


@dataclass(frozen=True)
class Access:
    """What a request needs: nothing (public), any valid credential (no scopes) or any one of
    ``scopes``."""

    public: bool = False
    scopes: tuple[Scope, ...] = ()


PUBLIC = Access(public=True)
SIGNED_IN = Access()
PREDICT = Access(scopes=(Scope.PREDICT,))
FEEDBACK = Access(scopes=(Scope.FEEDBACK,))
READ = Access(scopes=(Scope.READ,))
OPERATE = Access(scopes=(Scope.OPERATE,))
ADMIN = Access(scopes=(Scope.ADMIN,))
MODELS_READ = Access(scopes=(Scope.PREDICT, Scope.READ))

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Rule:
    """Access for a path prefix (matched on whole segments), split by reads and writes."""

    prefix: str
    read: Access
    write: Access


RULES: tuple[Rule, ...] = (
    Rule("/healthz", PUBLIC, PUBLIC),
    Rule("/readyz", PUBLIC, PUBLIC),
    Rule("/docs", PUBLIC, PUBLIC),
    Rule("/openapi.json", PUBLIC, PUBLIC),
    Rule("/v1/predict", PREDICT, PREDICT),
    Rule("/v1/tracks", PREDICT, PREDICT),
    Rule("/v1/feedback", FEEDBACK, FEEDBACK),
    Rule("/v1/models", MODELS_READ, OPERATE),
    Rule("/v1/experiments", READ, OPERATE),
    Rule("/v1/monitoring", READ, OPERATE),
    Rule("/v1/batch-jobs", ADMIN, ADMIN),
    Rule("/v1/users", ADMIN, ADMIN),
    Rule("/v1/keys", ADMIN, ADMIN),
    Rule("/v1/auth/login", PUBLIC, PUBLIC),
    Rule("/v1/auth/oidc", PUBLIC, PUBLIC),
    Rule("/v1/auth", SIGNED_IN, SIGNED_IN),
)
"""First match wins; unmatched paths need ``admin``."""


def _matches(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def required_access(method: str, path: str, *, metrics_public: bool = False) -> Access:
    """The access a request needs.

    Args:
        method: HTTP method.
        path: the request path or the route's path template (``/v1/models/{name}``).
        metrics_public: the ``metrics_public`` setting.
    """
    if _matches(path, "/metrics"):
        return PUBLIC if metrics_public else READ
    is_read = method.upper() in READ_METHODS
    for rule in RULES:
        if _matches(path, rule.prefix):
            return rule.read if is_read else rule.write
    return ADMIN


def has_scope(scopes: Iterable[Scope], scope: Scope | None) -> bool:
    """True when ``scopes`` grant ``scope`` (``None``: any key will do; ``admin`` grants all,
    ``operate`` grants ``read``)."""
    if scope is None:
        return True
    granted = set(scopes)
    if scope in granted or Scope.ADMIN in granted:
        return True
    return any(scope in _IMPLIED.get(s, ()) for s in granted)


def allows(scopes: Iterable[Scope], access: Access) -> bool:
    """True when ``scopes`` meet ``access`` (public, any credential, or one of its scopes)."""
    if access.public or not access.scopes:
        return True
    granted = frozenset(scopes)
    return any(has_scope(granted, s) for s in access.scopes)


def parse_scopes(value: str | Iterable[str]) -> frozenset[Scope]:
    """``"predict,feedback"`` (or an iterable of names) as scopes.

    Raises:
        ValidationError: an empty list or an unknown scope, naming it and the valid ones.
    """
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip().lower() for n in names if n.strip()]
    valid = ", ".join(s.value for s in Scope)
    if not names:
        raise ValidationError(
            f"no scopes given: choose from {valid}", details=[{"loc": ["scopes"], "msg": "empty"}]
        )
    unknown = [n for n in names if n not in Scope._value2member_map_]
    if unknown:
        raise ValidationError(
            f"unknown scope {unknown[0]!r}: choose from {valid}",
            details=[{"loc": ["scopes"], "msg": f"unknown scope {n!r}"} for n in unknown],
        )
    return frozenset(Scope(n) for n in names)

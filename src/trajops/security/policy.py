"""Which API key scope each route needs: one table, read by the serving edge's auth dependency.

Decisions (documented in ``docs/compliance.md``):

* Public (no key): ``/healthz``, ``/readyz``; ``/metrics`` only when ``metrics_public`` is set.
* ``/v1/predict`` needs ``predict``; naming a model other than an exposed one
  (``exposed_models``, the running experiment's arms) also needs ``pin``;
  ``/v1/feedback`` needs ``feedback``.
* ``/v1/models…``: reads (GET/HEAD/OPTIONS) need ``predict`` (clients may see which model serves
  them); writes (promote, roll back) need ``admin``.
* ``/v1/experiments…`` and ``/v1/monitoring…``: ``admin`` for reads and writes (operational and
  business data; least privilege).
* ``/v1/batch-jobs…``: ``admin`` (jobs read and write server-side files).
* ``/docs`` (Swagger UI and its local assets) and ``/openapi.json``: public (the contract is
  not secret, and a browser must load both before Swagger's *Authorize* button takes a key).
* Anything else: ``admin`` (deny by default, so a new route is never public by accident).
* ``admin`` implies every other scope.
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
    ADMIN = "admin"


@dataclass(frozen=True)
class Access:
    """What a request needs: nothing (public), any valid key (``scope=None``) or a scope."""

    public: bool = False
    scope: Scope | None = None


PUBLIC = Access(public=True)
PREDICT = Access(scope=Scope.PREDICT)
FEEDBACK = Access(scope=Scope.FEEDBACK)
ADMIN = Access(scope=Scope.ADMIN)

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
    Rule("/v1/feedback", FEEDBACK, FEEDBACK),
    Rule("/v1/models", PREDICT, ADMIN),
    Rule("/v1/experiments", ADMIN, ADMIN),
    Rule("/v1/monitoring", ADMIN, ADMIN),
    Rule("/v1/batch-jobs", ADMIN, ADMIN),
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
        return PUBLIC if metrics_public else ADMIN
    is_read = method.upper() in READ_METHODS
    for rule in RULES:
        if _matches(path, rule.prefix):
            return rule.read if is_read else rule.write
    return ADMIN


def has_scope(scopes: Iterable[Scope], scope: Scope | None) -> bool:
    """True when ``scopes`` grant ``scope`` (``None``: any key will do; ``admin`` grants all)."""
    granted = set(scopes)
    return scope is None or scope in granted or Scope.ADMIN in granted


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

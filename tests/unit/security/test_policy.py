"""The route -> scope table: public routes, scopes per route, deny by default."""

from __future__ import annotations

import pytest

from trajops.security.policy import (
    ADMIN,
    FEEDBACK,
    MODELS_READ,
    OPERATE,
    PREDICT,
    PUBLIC,
    READ,
    ROLE_SCOPES,
    SIGNED_IN,
    Access,
    Role,
    Scope,
    allows,
    has_scope,
    required_access,
)


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("GET", "/healthz", PUBLIC),
        ("GET", "/readyz", PUBLIC),
        ("POST", "/v1/predict", PREDICT),
        ("POST", "/v1/feedback", FEEDBACK),
        ("GET", "/v1/models", MODELS_READ),
        ("GET", "/v1/models/{name}/versions", MODELS_READ),
        ("POST", "/v1/models/{version}/promote", OPERATE),
        ("DELETE", "/v1/models/champion", OPERATE),
        ("GET", "/v1/experiments", READ),
        ("POST", "/v1/experiments", OPERATE),
        ("GET", "/v1/monitoring/performance", READ),
        ("POST", "/v1/monitoring/drift/run", OPERATE),
        ("GET", "/v1/batch-jobs/{job_id}", ADMIN),
        ("GET", "/v1/users", ADMIN),
        ("POST", "/v1/keys", ADMIN),
        ("POST", "/v1/auth/login", PUBLIC),
        ("GET", "/v1/auth/oidc/callback", PUBLIC),
        ("POST", "/v1/auth/oidc/exchange", PUBLIC),
        ("GET", "/v1/auth/me", SIGNED_IN),
        ("POST", "/v1/auth/logout", SIGNED_IN),
        ("POST", "/v1/auth/loginx", SIGNED_IN),  # not the public sign-in
        ("GET", "/v1/authx", ADMIN),
        ("GET", "/docs", PUBLIC),
        ("GET", "/openapi.json", PUBLIC),
        ("GET", "/docs/assets/swagger-ui.css", PUBLIC),
        ("GET", "/redoc", ADMIN),
        ("GET", "/metrics", READ),
        ("GET", "/v1/something-new", ADMIN),
        ("GET", "/healthzzz", ADMIN),  # whole segments only
        ("POST", "/v1/predictions", ADMIN),
    ],
)
def test_route_table(method: str, path: str, access: object) -> None:
    assert required_access(method, path) == access


def test_metrics_are_public_only_when_configured() -> None:
    assert required_access("GET", "/metrics", metrics_public=True) == PUBLIC
    assert required_access("GET", "/metrics", metrics_public=False) == READ


def test_roles_grant_what_they_say() -> None:
    viewer, operator, admin = (ROLE_SCOPES[r] for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN))
    assert allows(viewer, READ) and allows(viewer, MODELS_READ)
    assert not allows(viewer, OPERATE) and not allows(viewer, ADMIN)
    assert not allows(viewer, PREDICT)
    assert allows(operator, READ) and allows(operator, OPERATE)
    assert not allows(operator, ADMIN) and not allows(operator, PREDICT)
    for access in (READ, OPERATE, ADMIN, PREDICT, FEEDBACK, MODELS_READ):
        assert allows(admin, access)


def test_scope_implication() -> None:
    assert has_scope({Scope.OPERATE}, Scope.READ)
    assert not has_scope({Scope.READ}, Scope.OPERATE)
    assert not has_scope({Scope.PREDICT}, Scope.READ)
    assert allows({Scope.PREDICT}, MODELS_READ)  # machines see which model serves them
    assert allows(frozenset(), SIGNED_IN) and allows(frozenset(), PUBLIC)
    assert not allows(frozenset(), Access(scopes=(Scope.READ,)))


def test_role_names_match_the_settings() -> None:
    from trajops._settings_security import ROLE_NAMES

    assert set(ROLE_NAMES) == {r.value for r in Role}

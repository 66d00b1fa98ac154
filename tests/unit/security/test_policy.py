"""The route -> scope table: public routes, scopes per route, deny by default."""

from __future__ import annotations

import pytest

from trajops.security.policy import ADMIN, FEEDBACK, PREDICT, PUBLIC, required_access


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("GET", "/healthz", PUBLIC),
        ("GET", "/readyz", PUBLIC),
        ("POST", "/v1/predict", PREDICT),
        ("POST", "/v1/feedback", FEEDBACK),
        ("GET", "/v1/models", PREDICT),
        ("GET", "/v1/models/{name}/versions", PREDICT),
        ("POST", "/v1/models/promote", ADMIN),
        ("DELETE", "/v1/models/champion", ADMIN),
        ("GET", "/v1/experiments", ADMIN),
        ("POST", "/v1/experiments", ADMIN),
        ("GET", "/v1/monitoring/performance", ADMIN),
        ("GET", "/docs", PUBLIC),
        ("GET", "/openapi.json", PUBLIC),
        ("GET", "/docs/assets/swagger-ui.css", PUBLIC),
        ("GET", "/redoc", ADMIN),
        ("GET", "/metrics", ADMIN),
        ("GET", "/v1/something-new", ADMIN),
        ("GET", "/healthzzz", ADMIN),  # whole segments only
        ("POST", "/v1/predictions", ADMIN),
    ],
)
def test_route_table(method: str, path: str, access: object) -> None:
    assert required_access(method, path) == access


def test_metrics_are_public_only_when_configured() -> None:
    assert required_access("GET", "/metrics", metrics_public=True) == PUBLIC
    assert required_access("GET", "/metrics", metrics_public=False) == ADMIN

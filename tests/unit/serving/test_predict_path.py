"""``POST /v1/predict`` through PredictPath (below FastAPI's routing) against the FastAPI route
it stands in for: the same answers and errors, and the same labels in metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import RegistryInfo
from trajops.serving import AppOptions, create_app
from trajops.serving.middleware import BODY_KEY
from trajops.serving.predict_path import PredictPath

BODY = {
    "scene_id": "s1",
    "agents": [
        {"agent_id": "a", "positions": [[0.5 * i, 0.0] for i in range(8)]},
        {"agent_id": 7, "positions": [[1.0, 0.4 * i] for i in range(8)]},
    ],
    "num_samples": 3,
}
_VOLATILE = {"request_id", "latency_ms", "cached"}
Served = tuple[Any, TestClient]


@pytest.fixture(scope="module")
def served(registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = make_settings(registry, tmp_path_factory.mktemp("home"))
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False, freeze_gc=False))
    with TestClient(app, headers={"X-API-Key": token}) as client:
        yield app, client


def _through_the_route(app: Any, client: TestClient, body: bytes) -> tuple[int, dict[str, Any]]:
    """The FastAPI route's own answer to ``body`` (called directly, on the app's loop)."""
    from trajops.serving.routes.predict import predict

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def direct() -> Any:
        scope: Scope = {"type": "http", "method": "POST", "path": "/v1/predict", "app": app,
                        "headers": [], "query_string": b""}  # fmt: skip
        return await predict(Request(scope, receive))

    response = client.portal.call(direct)  # type: ignore[union-attr]
    return response.status_code, json.loads(response.body)


def test_installed_inside_auth_and_the_serving_middleware(served: Served) -> None:
    app, _ = served
    names = [m.cls.__name__ for m in app.user_middleware]
    assert names == ["ServingMiddleware", "AuthMiddleware", "PredictPath"]


def test_the_fast_path_answers_as_the_route_does(served: Served) -> None:
    app, client = served
    fast = client.post("/v1/predict", json=BODY, headers={"x-request-id": "fast-1"})
    assert fast.status_code == 200, fast.text
    assert fast.headers["x-request-id"] == "fast-1"
    answer = fast.json()
    status, routed = _through_the_route(app, client, json.dumps(BODY).encode())
    assert status == 200
    assert {k: v for k, v in routed.items() if k not in _VOLATILE} == {
        k: v for k, v in answer.items() if k not in _VOLATILE
    }
    assert [p["agent_id"] for p in answer["predictions"]] == ["a", 7]
    assert len(answer["predictions"][0]["samples"]) == 3
    bad = client.post("/v1/predict", json={"agents": []})
    assert bad.status_code == 422 and set(bad.json()["error"]) == {"code", "message", "details"}
    metrics = client.get("/metrics").text
    assert 'route="/v1/predict"' in metrics


def test_body_not_read_goes_to_the_route(served: Served) -> None:
    """A request the serving middleware did not read (no body in the scope) is the route's."""
    app, _ = served
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    path = PredictPath(inner, app_state=app.state, route=app.routes[0])
    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/predict"}
    asyncio.run(path(scope, None, None))  # type: ignore[arg-type]
    assert seen == [scope] and BODY_KEY not in scope

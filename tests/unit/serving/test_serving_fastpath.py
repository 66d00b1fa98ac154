"""``POST /v1/predict`` through PredictFastPath (below FastAPI's routing) against the FastAPI
route it stands in for: same answers, same errors, same metrics and audit labels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from tests._support.api_keys import issue_key
from tests._support.registry import RegistryInfo
from tests.unit.serving.conftest import make_settings
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.serving.fastpath import PredictFastPath
from trajops.serving.routes import request_id_of

BODY = {
    "scene_id": "s1",
    "agents": [
        {"agent_id": "a", "positions": [[0.5 * i, 0.0] for i in range(8)]},
        {"agent_id": 7, "positions": [[1.0, 0.4 * i] for i in range(8)]},
    ],
    "num_samples": 3,
}
_VOLATILE = {"request_id", "latency_ms", "cached"}


Served = tuple[Any, httpx.Client]


@pytest.fixture(scope="module")
def served(registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = make_settings(registry, tmp_path_factory.mktemp("home"))
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": token}) as client,
    ):
        yield app, client


def _route_only(app: Any) -> Any:
    """What PredictFastPath wraps: FastAPI's own stack and routes (no auth, no body read)."""
    layer = app.middleware_stack  # built by the first request
    while not isinstance(layer, PredictFastPath):
        layer = layer.app
    inner = layer.app

    async def direct(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the app's own lifespan already runs: only answer
            while True:
                message: Message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        scope["app"] = app
        await inner(scope, receive, send)

    return direct


def test_the_fast_path_is_installed_inside_auth(served: Served) -> None:
    app, _ = served
    names = [m.cls.__name__ for m in app.user_middleware]
    assert names == ["ServingMiddleware", "AuthMiddleware", "PredictFastPath"]
    assert PredictFastPath in [m.cls for m in app.user_middleware]


def test_fast_path_and_route_give_the_same_answer(served: Served) -> None:
    app, client = served
    fast = client.post("/v1/predict", json=BODY, headers={"x-request-id": "fast-1"})
    assert fast.status_code == 200, fast.text
    assert fast.headers["x-request-id"] == "fast-1"
    assert fast.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    with serve_in_thread(_route_only(app)) as url:
        route = httpx.post(
            f"{url}/v1/predict", json=BODY, headers={"x-request-id": "route-1"}, timeout=30
        )
    assert route.status_code == 200, route.text
    assert route.headers["x-request-id"] == "route-1"
    a, b = fast.json(), route.json()
    assert a["request_id"] == "fast-1" and b["request_id"] == "route-1"
    assert {k: v for k, v in a.items() if k not in _VOLATILE} == {
        k: v for k, v in b.items() if k not in _VOLATILE
    }
    assert len(a["predictions"][0]["samples"]) == 3


def test_request_ids_made_here_are_time_ordered_and_stored_with_the_audit_row(
    served: Served,
) -> None:
    app, client = served
    ids = [client.post("/v1/predict", json=BODY).headers["x-request-id"] for _ in range(3)]
    assert ids == sorted(ids) and all(uuid.UUID(i).version == 7 for i in ids)
    assert app.state.monitor.writer.flush(30)
    with app.state.monitor.store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT request_id, record_id FROM audit_log WHERE request_id IN (:a, :b, :c)"),
            dict(zip("abc", ids, strict=True)),
        ).all()
    assert sorted(r[0] for r in rows) == ids
    assert all(uuid.UUID(r[1]).version == 7 for r in rows)  # audit record ids too


def test_request_ids_are_random_while_stored_times_are_coarsened() -> None:
    headers = [(b"x-request-id", b"bad id with spaces")]  # malformed: replaced, not echoed
    scope: dict[str, Any] = {"headers": headers}
    ordered = [request_id_of(scope) for _ in range(50)]
    assert ordered == sorted(ordered) and uuid.UUID(ordered[0]).version == 7
    # with TRAJOPS_STORE_TIME_BUCKET_S set, an id must not carry the time to the millisecond
    random_ids = [request_id_of(scope, time_ordered=False) for _ in range(50)]
    assert random_ids != sorted(random_ids) and len(set(random_ids)) == 50
    given = {"headers": [(b"x-request-id", b"req-7")]}
    assert request_id_of(given) == request_id_of(given, time_ordered=False) == "req-7"


def test_errors_keep_the_one_shape(served: Served) -> None:
    _, client = served
    bad = client.post("/v1/predict", json={"agents": []})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"
    unknown = client.post("/v1/predict", json={**BODY, "model": "no-such-alias"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    anonymous = httpx.post(client.base_url.join("/v1/predict"), json=BODY)  # no key: auth first
    assert anonymous.status_code == 401


def test_a_bug_is_a_500_in_the_error_shape_counted_and_audited(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = served

    async def broken(**_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.service, "predict", broken)
    # A fresh connection: uvicorn closes the one a server error went out on.
    r = httpx.post(
        client.base_url.join("/v1/predict"),
        json=BODY,
        headers={**client.headers, "x-request-id": "bug-1"},
        timeout=30,
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "boom" not in r.text  # no internals leak
    monkeypatch.undo()
    counted = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("trajops_http_requests_total{")
        and 'route="/v1/predict"' in line
        and 'status="500"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1
    assert app.state.monitor.writer.flush(10)
    query = text("SELECT route, status FROM audit_log WHERE request_id = 'bug-1'")
    with app.state.monitor.store.session() as session:
        rows = [tuple(row) for row in session.execute(query)]
    assert rows == [("/v1/predict", 500)]


def test_other_methods_and_paths_pass_through(served: Served) -> None:
    _, client = served
    assert client.get("/v1/predict").status_code == 405
    assert client.post("/v1/feedback", json={}).status_code == 422
    assert client.get("/healthz").json() == {"status": "ok"}

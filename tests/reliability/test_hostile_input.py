"""Hostile input, by hand: oversized bodies, deep nesting, NaN/Infinity literals, wrong types,
huge arrays, unicode ids and odd headers. Every answer is a 4xx in the one error shape (or a
200 where the input is legal), never a 5xx or a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._support.load import walker_body
from tests._support.registry import build_registry
from tests._support.replica import service_settings, serving
from trajops.serving import AppOptions

pytestmark = pytest.mark.integration

MAX_BODY = 256 * 1024
POSITIONS = [[0.4 * t, 1.0] for t in range(8)]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("hostile")
    registry = build_registry(root / "registry")
    settings = service_settings(
        root / "home", tracking_uri=registry.uri, max_body_bytes=MAX_BODY, max_agents=100
    )
    with serving(settings, AppOptions(poll=False, freeze_gc=False)) as (_, http):
        yield http


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    error = r.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def raw(api: httpx.Client, body: bytes | str, path: str = "/v1/predict", **kw) -> httpx.Response:
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return api.post(path, content=body, headers=headers, **kw)


def test_oversized_body_is_413_before_reading_it(api: httpx.Client) -> None:
    big = b'{"agents": [' + b" " * (MAX_BODY + 10) + b"]}"
    assert_error(raw(api, big), 413, "payload_too_large")


def test_oversized_chunked_body_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts streamed bytes
        yield b'{"agents": ['
        for _ in range(MAX_BODY // 8192 + 2):
            yield b" " * 8192
        yield b"]}"

    r = api.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_deeply_nested_json_is_rejected(api: httpx.Client, depth: int) -> None:
    body = '{"agents": ' + "[" * depth + "]" * depth + "}"
    assert_error(raw(api, body), 422)
    nested = '{"agents": [{"agent_id": "a", "positions": ' + '{"a":' * depth + "1" + "}" * depth
    assert_error(raw(api, nested + "}]}"), 422)
    deeper = "[" * (MAX_BODY // 2)  # nesting up to the body limit
    assert_error(raw(api, '{"agents": ' + deeper + "]" * (MAX_BODY // 2) + "}"), 413)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_nan_and_infinity_literals_are_rejected(api: httpx.Client, literal: str) -> None:
    positions = ",".join(f"[{literal if t == 3 else 0.4 * t}, 1.0]" for t in range(8))
    body = f'{{"agents": [{{"agent_id": "a", "positions": [{positions}]}}]}}'
    error = assert_error(raw(api, body), 422)
    assert error["details"], "the offending field is named"
    feedback = '{"request_id": "r1", "agent_id": "a", "positions": [[' + literal + ", 0.0]]}"
    assert_error(raw(api, feedback, "/v1/feedback"), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"agents": "all of them"},
        {"agents": {"agent_id": "a"}},
        {"agents": [{"agent_id": ["a"], "positions": POSITIONS}]},
        {"agents": [{"agent_id": "a", "positions": "0,0;1,1"}]},
        {"agents": [{"agent_id": "a", "positions": [["0", "1"]] * 8}]},
        {"agents": [{"agent_id": "a", "positions": [[0, 1, 2]] * 8}]},
        {"agents": [{"agent_id": "a", "positions": POSITIONS}], "num_samples": "3"},
        {"agents": [{"agent_id": "a", "positions": POSITIONS}], "num_samples": True},
        {"agents": [{"agent_id": "a", "positions": POSITIONS}], "num_samples": 10**30},
        {"agents": [{"agent_id": "a", "positions": POSITIONS}], "model": {"$gt": ""}},
        {"agents": [{"agent_id": None, "positions": POSITIONS}]},
        {"agents": [], "scene_id": 7},
        [{"agent_id": "a", "positions": POSITIONS}],
        "agents",
        None,
        12,
    ],
)
def test_wrong_types_are_422(api: httpx.Client, body: object) -> None:
    error = assert_error(api.post("/v1/predict", json=body), 422)
    assert all({"loc", "msg"} <= set(d) for d in error["details"])


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff\xfe\x00garbage", b'{"agents": [}', b"\x00" * 64, '{"agents": "\ud800"}'],
)
def test_malformed_bodies_are_422(api: httpx.Client, body: bytes | str) -> None:
    content = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    assert_error(raw(api, content), 422)


def test_wrong_content_type_is_a_4xx(api: httpx.Client) -> None:
    r = api.post("/v1/predict", content=b"agents=1", headers={"content-type": "text/plain"})
    assert 400 <= r.status_code < 500, r.text


def test_huge_arrays_are_rejected(api: httpx.Client) -> None:
    many = {"agents": [{"agent_id": i, "positions": POSITIONS} for i in range(101)]}
    error = assert_error(api.post("/v1/predict", json=many), 422)
    assert "too many agents" in error["message"]
    long = {"agents": [{"agent_id": "a", "positions": [[0.0, 0.0]] * 10_000}]}
    assert_error(api.post("/v1/predict", json=long), 422)
    wide = {"agents": [{"agent_id": "a", "positions": [[0.0] * 1_000] * 8}]}
    assert_error(api.post("/v1/predict", json=wide), 422)
    huge = {"agents": [{"agent_id": "a", "positions": [[0.0] * 100_000] * 8}]}
    assert_error(api.post("/v1/predict", json=huge), 413)
    far = {"agents": [{"agent_id": "a", "positions": [[1e300, 0.0]] * 8}]}
    assert_error(api.post("/v1/predict", json=far), 422)
    ids = {"agents": [{"agent_id": "x" * 100_000, "positions": POSITIONS}]}
    assert_error(api.post("/v1/predict", json=ids), 422)


@pytest.mark.parametrize(
    "agent_id", ["行人-7", "🚶‍♀️🚶", "\u202eevil\u202c", "a\u0000b", "Ωmega ", "\U0010ffff"]
)
def test_unicode_ids_are_served_and_echoed(api: httpx.Client, agent_id: str) -> None:
    body = {"scene_id": "场景-①", "agents": [{"agent_id": agent_id, "positions": POSITIONS}]}
    r = api.post("/v1/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["predictions"][0]["agent_id"] == agent_id
    fb = api.post(
        "/v1/feedback",
        json={"request_id": out["request_id"], "agent_id": "другой", "positions": [[1.0, 1.0]]},
    )
    assert fb.status_code in (404, 409, 422), fb.text


def test_lone_surrogate_id_is_never_a_5xx(api: httpx.Client) -> None:
    body = '{"agents": [{"agent_id": "\\ud800", "positions": ' + str(POSITIONS) + "}]}"
    r = raw(api, body)
    assert r.status_code in (200, 422), r.text


def test_hostile_headers(api: httpx.Client) -> None:
    body = walker_body(1)
    key = api.headers["X-API-Key"]
    for bad in ("x" * 10_000, "tj_" + "é" * 20, "Bearer", key[:-1], key + "x"):
        headers = [(b"X-API-Key", bad.encode("utf-8"))]
        r = httpx.post(f"{api.base_url}/v1/predict", json=body, headers=headers)
        assert_error(r, 401)
    control = [(b"X-API-Key", (key + "\x7f").encode())]  # h11 refuses it before the app
    r = httpx.post(f"{api.base_url}/v1/predict", json=body, headers=control)
    assert r.status_code == 400
    odd = ("é" * 100 + ";drop").encode("utf-8")
    r = api.post("/v1/predict", json=body, headers=[(b"x-request-id", odd)])
    assert r.status_code == 200, r.text
    assert r.json()["request_id"].isalnum(), "an unusable request id is replaced"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/monitoring/alerts?limit=1e9"),
        ("GET", "/v1/monitoring/alerts?status=%3Cscript%3E"),
        ("GET", "/v1/monitoring/performance?window=" + "9" * 400),
        ("GET", "/v1/monitoring/performance?window=-1h"),
        ("GET", "/v1/experiments/%00%ff"),
        ("GET", "/v1/monitoring/drift/99999999999999999999999/report"),
        ("PUT", "/v1/models/default"),
        ("POST", "/v1/models/reload?x=" + "a" * 4000),
    ],
)
def test_hostile_paths_and_queries_are_never_5xx(api: httpx.Client, method: str, path: str) -> None:
    r = api.request(method, path)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert_error(r, r.status_code)

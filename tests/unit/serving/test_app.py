"""The HTTP API on a real uvicorn server and a real SQLite MLflow registry."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

BODY = {
    "scene_id": "s1",
    "agents": [
        {"agent_id": "a", "positions": [[0.5 * i, 0.0] for i in range(8)]},
        {"agent_id": 7, "positions": [[1.0, 0.4 * i] for i in range(8)]},
    ],
}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"code", "message", "details"}
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    for d in err["details"]:
        assert set(d) == {"loc", "msg"}
    return err  # type: ignore[no-any-return]


def test_predict_constant_velocity(client: httpx.Client) -> None:
    r = client.post("/v1/predict", json=BODY, headers={"x-request-id": "req-123"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "req-123" == r.headers["x-request-id"]
    assert body["model"]["name"] == "trajectory-forecaster"
    assert (body["model"]["version"], body["model"]["alias"]) == ("1", "champion")
    assert body["model"]["run_id"]
    assert (body["variant"], body["step_s"], body["horizon_s"]) == ("default", 0.4, 4.8)
    assert [p["agent_id"] for p in body["predictions"]] == ["a", 7]
    walk = np.array(body["predictions"][0]["positions"])
    assert walk.shape == (12, 2)
    np.testing.assert_allclose(walk[:, 0], 3.5 + 0.5 * np.arange(1, 13), atol=1e-5)
    assert "samples" not in body["predictions"][0]
    assert body["latency_ms"] > 0


def test_second_identical_request_is_cached(client: httpx.Client) -> None:
    body = {"agents": [{"agent_id": "c", "positions": [[3.0, 0.3 * i] for i in range(8)]}]}
    first, second = (client.post("/v1/predict", json=body).json() for _ in range(2))
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["predictions"] == second["predictions"]
    assert first["request_id"] != second["request_id"]


def test_samples_when_num_samples_above_one(client: httpx.Client) -> None:
    r = client.post("/v1/predict", json={**BODY, "num_samples": 4})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][1]
    samples = np.array(pred["samples"])
    assert samples.shape == (4, 12, 2)
    np.testing.assert_allclose(pred["positions"], samples[0])
    assert np.ptp(samples[:, -1, 0]) > 0, "samples must differ"
    again = client.post("/v1/predict", json={**BODY, "num_samples": 4}).json()
    assert again["predictions"][1]["samples"] == pred["samples"]


@pytest.mark.parametrize(
    ("ref", "version", "alias"),
    [("2", "2", None), ("challenger", "2", "challenger"), ("1", "1", None)],
)
def test_model_by_version_or_alias(
    client: httpx.Client, ref: str, version: str, alias: str | None
) -> None:
    model = client.post("/v1/predict", json={**BODY, "model": ref}).json()["model"]
    assert (model["version"], model["alias"]) == (version, alias)


@pytest.mark.parametrize("ref", ["99", "no-such-alias"])
def test_unknown_model_is_404(client: httpx.Client, ref: str) -> None:
    err = error_of(client.post("/v1/predict", json={**BODY, "model": ref}), 404, "model_not_found")
    assert ref in err["message"]  # type: ignore[operator]


def test_hostile_payloads_over_http(client: httpx.Client) -> None:
    nan = b'{"agents": [{"agent_id": "a", "positions": [[NaN, 0]' + b", [0, 0]" * 7 + b"]}]}"
    error_of(client.post("/v1/predict", content=nan), 422, "validation_error")
    error_of(client.post("/v1/predict", content=b'{"agents": ['), 422, "malformed_json")
    many = {"agents": [{"agent_id": i, "positions": [[i, 0]] * 8} for i in range(51)]}
    err = error_of(client.post("/v1/predict", json=many), 422, "validation_error")
    assert "51 > 50" in err["message"]  # type: ignore[operator]
    dup = {"agents": [BODY["agents"][0], BODY["agents"][0]]}  # type: ignore[index]
    error_of(client.post("/v1/predict", json=dup), 422, "validation_error")
    huge = {"agents": [{"agent_id": "a", "positions": [[1e300, 0]] * 8}]}
    error_of(client.post("/v1/predict", json=huge), 422, "validation_error")


def test_oversized_body_by_content_length_and_by_stream(client: httpx.Client) -> None:
    big = b'{"agents": [' + b" " * 30_000 + b"]}"
    err = error_of(client.post("/v1/predict", content=big), 413, "payload_too_large")
    assert "20000" in err["message"]  # type: ignore[operator]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"agents": ['
        for _ in range(30):
            yield b" " * 1000

    r = client.post("/v1/predict", content=chunks())
    assert "content-length" not in r.request.headers
    error_of(r, 413, "payload_too_large")
    assert client.get("/healthz").status_code == 200, "the server survives"


def test_framework_errors_use_the_same_shape(client: httpx.Client) -> None:
    error_of(client.get("/no/such/route"), 404, "not_found")
    r = client.get("/v1/predict")
    error_of(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]
    err = error_of(client.put("/v1/models/default", json={"model": 3}), 422, "validation_error")
    assert err["details"][0]["loc"] == ["body", "model"]  # type: ignore[index]
    json_type = {"content-type": "application/json"}
    oops = client.put("/v1/models/default", content=b"{oops", headers=json_type)
    error_of(oops, 422, "malformed_json")


def test_random_junk_never_gives_a_server_error(client: httpx.Client) -> None:
    rng = random.Random(0)
    atoms: list[object] = [None, True, -1, 0, 1e308, "x", "🚶", [], {}, [[0, 0]] * 8, "NaN"]
    statuses = set()
    for _ in range(150):
        payload = json.loads(json.dumps(BODY))
        agent = payload["agents"][rng.randrange(2)]
        where = rng.choice(["agent_id", "positions", "timestamps", "extra", "pos", "root"])
        value = rng.choice(atoms)
        if where == "pos":
            agent["positions"][rng.randrange(8)][rng.randrange(2)] = value
        elif where == "root":
            payload[rng.choice(["agents", "num_samples", "model", "scene_id"])] = value
        else:
            agent[where] = value
        r = client.post("/v1/predict", json=payload)
        statuses.add(r.status_code)
        assert r.status_code < 500, (payload, r.text)
    assert 422 in statuses and 200 in statuses


def test_models_listing_and_default_switch(client: httpx.Client) -> None:
    listing = client.get("/v1/models").json()
    assert listing["aliases"]["champion"] == "1" and listing["aliases"]["challenger"] == "2"
    assert {v["version"] for v in listing["versions"]} >= {"1", "2"}
    assert all(v["load_seconds"] > 0 and v["loaded_at"] for v in listing["versions"])

    error_of(client.put("/v1/models/default", json={"model": "42"}), 404, "model_not_found")
    assert client.get("/v1/models").json()["default"] == "champion", "a bad ref changes nothing"
    try:
        r = client.put("/v1/models/default", json={"model": "challenger"})
        assert r.status_code == 200 and r.json()["default"] == "challenger"
        model = client.post("/v1/predict", json=BODY).json()["model"]
        assert (model["version"], model["alias"]) == ("2", "challenger")
    finally:
        client.put("/v1/models/default", json={"model": "champion"})
    assert client.post("/v1/predict", json=BODY).json()["model"]["version"] == "1"
    assert client.post("/v1/models/reload").json()["aliases"]["champion"] == "1"


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert checks["model"]["ok"] and checks["model"]["version"] == "1"
    assert checks["registry"]["ok"] and checks["cache"]["backend"] == "lru"
    store = checks["store"]
    assert store["ok"] and store["pending"] >= 0 and store["unwritten"] >= 0


def test_readiness_counts_rows_until_the_writer_process_has_them(client: httpx.Client) -> None:
    for _ in range(5):
        assert client.post("/v1/predict", json=BODY).status_code == 200
    counts = []
    for _ in range(30):  # each probe is audited too: poll slower than the writer reports
        counts.append(client.get("/readyz").json()["checks"]["store"]["unwritten"])
        if counts[-1] == 0:
            break
        time.sleep(0.3)
    assert counts[-1] == 0, counts


def test_metrics_count_requests_cache_and_loads(client: httpx.Client) -> None:
    client.post("/v1/predict", json=BODY)
    client.post("/v1/predict", json=BODY)
    client.get("/nope")
    text = client.get("/metrics").text
    assert 'route="/v1/predict",status="200"' in text
    assert 'trajops_http_requests_total{method="POST",model_version="1",route="/v1/predict"' in text
    assert 'route="unmatched",status="404"' in text
    assert 'trajops_cache_lookups_total{backend="lru",result="hit"}' in text
    assert 'trajops_predictions_total{model_version="1",variant="default"}' in text
    assert 'trajops_model_loads_total{result="success"} 2.0' in text
    assert "trajops_http_request_duration_seconds_bucket" in text


def test_openapi_documents_the_predict_body(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["examples"][0]["agents"]
    assert "AgentIn" in schemas and "PredictResponse" in schemas and "ErrorResponse" in schemas
    feedback = spec["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert feedback["schema"]["$ref"] == "#/components/schemas/FeedbackRequest"
    assert schemas["AgentTruth"]["properties"]["positions"]["maxItems"] == 12
    assert "agents" in schemas["FeedbackRequest"]["properties"]
    tracks = spec["paths"]["/v1/tracks"]["post"]
    assert tracks["requestBody"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/TrackFrame"
    )
    assert "Sighting" in schemas and "TrackResponse" in schemas
    assert schemas["TrackFrame"]["required"] == ["scene_id", "t", "agents"]
    assert spec["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("version", ["99999999999999999999", "v2147483648", "0099999999999"])
def test_unknown_card_versions_are_404_without_server_paths(
    client: httpx.Client, version: str
) -> None:
    r = client.get(f"/v1/models/{version}/card")
    assert r.status_code == 404, r.text
    assert "/" not in r.json()["error"]["message"]


def test_server_errors_never_carry_server_paths() -> None:
    from trajops.serving.errors import scrub

    leaked = "store unreachable at sqlite:////srv/trajops/trajops.db and /srv/trajops/wal/x"
    assert scrub(leaked) == "store unreachable at <server> and <server>"
    assert scrub("no default model loaded") == "no default model loaded"

"""Hostile and valid payloads against the /v1/predict parser (no server needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trajops.errors import ValidationError
from trajops.serving.schemas import MalformedJSONError, RequestLimits, parse_predict_request

LIMITS = RequestLimits(max_agents=5, max_coordinate=100.0, timestamp_tolerance_s=0.05)


def walker(agent_id: object = "a", *, y: float = 0.0, **extra: object) -> dict[str, object]:
    return {"agent_id": agent_id, "positions": [[0.5 * i, y] for i in range(8)], **extra}


def parse(payload: object) -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_predict_request(body, LIMITS)


def test_valid_request_gives_positions_array() -> None:
    parsed = parse({"agents": [walker("a"), walker(7, y=1.0)], "num_samples": 3})
    assert parsed.obs.shape == (2, 8, 2)  # type: ignore[attr-defined]
    assert parsed.obs[1, 7].tolist() == [3.5, 1.0]  # type: ignore[attr-defined]
    assert parsed.agent_ids == ["a", 7]  # type: ignore[attr-defined]


def test_unicode_ids_and_timestamps_accepted() -> None:
    ts = [100.0 + 0.4 * i + (0.02 if i % 2 else 0.0) for i in range(8)]
    parsed = parse({"agents": [walker("行人-β-🚶", timestamps=ts)]})
    assert parsed.agent_ids == ["行人-β-🚶"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"agents": [{"agent_id": "a", "positions": [[0, 0]] * 7}]}, ["agents", 0, "positions"]),
        ({"agents": [{"agent_id": "a", "positions": [[0, 0]] * 9}]}, ["agents", 0, "positions"]),
        (
            {"agents": [{"agent_id": "a", "positions": [[0, 0, 0]] * 8}]},
            ["agents", 0, "positions", 0],
        ),
        (
            {"agents": [{"agent_id": "a", "positions": [[[0, 0]]] * 8}]},
            ["agents", 0, "positions", 0],
        ),
        (
            {"agents": [{"agent_id": "a", "positions": [["1", 0]] * 8}]},
            ["agents", 0, "positions", 0, 0],
        ),
        (
            {"agents": [{"agent_id": "a", "positions": [[True, 0]] * 8}]},
            ["agents", 0, "positions", 0, 0],
        ),
        ({"agents": [{"agent_id": "a", "positions": {"x": 1}}]}, ["agents", 0, "positions"]),
        ({"agents": [walker(None)]}, ["agents", 0, "agent_id"]),
        ({"agents": [walker("")]}, ["agents", 0, "agent_id"]),
        ({"agents": [walker("a", extra={"deep": [[[[1]]]]})]}, ["agents", 0, "extra"]),
        ({"agents": []}, ["agents"]),
        ({"agents": "junk"}, ["agents"]),
        ({}, ["agents"]),
        ([1, 2, 3], []),
        ({"agents": [walker()], "num_samples": 0}, ["num_samples"]),
        ({"agents": [walker()], "num_samples": 21}, ["num_samples"]),
        ({"agents": [walker()], "num_samples": 2.5}, ["num_samples"]),
        ({"agents": [walker()], "model": "../../etc"}, ["model"]),
        ({"agents": [walker(timestamps=[0.0] * 7)]}, ["agents", 0, "timestamps"]),
    ],
)
def test_schema_violations_point_at_the_field(payload: object, loc: list[object]) -> None:
    with pytest.raises(ValidationError) as info:
        parse(payload)
    assert info.value.status_code == 422
    assert info.value.details, "details must say where the problem is"
    assert info.value.details[0]["loc"][: len(loc) + 1] == ["body", *loc]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_non_finite_literals_are_refused(literal: bytes) -> None:
    positions = b"[" + b",".join([b"[" + literal + b", 0]"] + [b"[0, 0]"] * 7) + b"]"
    body = b'{"agents": [{"agent_id": "a", "positions": ' + positions + b"}]}"
    with pytest.raises(ValidationError) as info:
        parse(body)
    assert info.value.details[0]["loc"] == ["body", "agents", 0, "positions", 0, 0]
    assert "finite" in info.value.details[0]["msg"]


def test_coordinate_bound_names_the_offending_value() -> None:
    agent = walker("far")
    agent["positions"][5] = [0.0, -100.5]  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        parse({"agents": [walker("ok"), agent]})
    assert info.value.details[0]["loc"] == ["body", "agents", 1, "positions", 5, 1]


def test_duplicate_ids_refused_even_across_types() -> None:
    with pytest.raises(ValidationError, match="duplicate agent_id '7'") as info:
        parse({"agents": [walker(7), walker("7", y=1.0)]})
    assert info.value.details[0]["loc"] == ["body", "agents", 1, "agent_id"]


def test_too_many_agents() -> None:
    with pytest.raises(ValidationError, match="too many agents: 6 > 5"):
        parse({"agents": [walker(i, y=float(i)) for i in range(6)]})


@pytest.mark.parametrize(
    "ts",
    [
        [0.4 * i for i in range(7)] + [2.0],  # a gap at the end
        [0.4 * (7 - i) for i in range(8)],  # decreasing
        [0.0] * 8,  # not increasing
        [0.41 * i * 10 for i in range(8)],  # wrong step
    ],
)
def test_bad_timestamp_steps(ts: list[float]) -> None:
    with pytest.raises(ValidationError, match="timestamps must increase") as info:
        parse({"agents": [walker("a"), walker("b", y=1.0, timestamps=ts)]})
    assert info.value.details[0]["loc"][:4] == ["body", "agents", 1, "timestamps"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"agents": [}', b"\xff\xfe\x00", b"[" * 100_000],
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(MalformedJSONError) as info:
        parse(body)
    assert info.value.code == "malformed_json"
    assert info.value.status_code == 422


def test_huge_integer_literal_is_a_clean_error() -> None:
    body = b'{"agents": [{"agent_id": "a", "positions": [[1' + b"0" * 5000 + b", 0]]}]}"
    with pytest.raises(ValidationError):
        parse(body)


def test_positions_array_is_float64_and_exact() -> None:
    parsed = parse({"agents": [walker("a", y=1e-7)]})
    assert parsed.obs.dtype == np.float64  # type: ignore[attr-defined]
    assert parsed.obs[0, 0, 1] == 1e-7  # type: ignore[attr-defined]

"""Hostile and valid payloads against the /v1/predict parser (no server needed)."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest

from trajops.errors import ValidationError
from trajops.serving.schemas import (
    MalformedJSONError,
    RequestLimits,
    parse_predict_request,
)

LIMITS = RequestLimits(max_agents=5, max_coordinate=100.0, timestamp_tolerance_s=0.05)
LIMIT = LIMITS.max_coordinate


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


@pytest.mark.parametrize("value", [100, 100.0, -100, -100.0])
def test_coordinates_on_the_bound_are_accepted(value: float) -> None:
    agent = walker("edge")
    agent["positions"][2] = [value, value]  # type: ignore[index]
    body = json.dumps({"agents": [agent]}).encode()
    assert parse(body).obs[0, 2].tolist() == [value, value]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [101, 100.000001, -101, -100.5])
def test_coordinates_beyond_the_bound_are_refused(value: float) -> None:
    agent = walker("far")
    agent["positions"][3] = [0.0, value]  # type: ignore[index]
    body = json.dumps({"agents": [agent]}).encode()
    with pytest.raises(ValidationError) as info:
        parse(body)
    assert info.value.details[0]["loc"] == ["body", "agents", 0, "positions", 3, 1]


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


# --- mutated payloads ------------------------------------------------------------------------
_ODD_VALUES: list[object] = [
    None, True, False, 0, 1, -1, 2**63, 2**70, 0.5, -0.0, 1e308, float("nan"), float("inf"),
    "", "a", "x" * 129, "../../etc", "ok-1.2_b", "abc\n", [], {}, [1.0, 2.0], [[1.0, 2.0]] * 8,
    [1.0] * 8, [[1, 2, 3]] * 8, "\u884c\u4eba",
]  # fmt: skip


_KEYS = ("agents", "scene_id", "model", "num_samples", "agent_id", "positions", "timestamps", "x")


def _mutated(rng: random.Random) -> object:
    payload: dict[str, object] = {
        "agents": [walker("a"), walker(7, y=1.0, timestamps=[0.4 * i for i in range(8)])]
    }
    for _ in range(rng.randint(1, 3)):
        target: dict[str, object] = payload
        agents = payload.get("agents")
        if rng.random() < 0.6 and isinstance(agents, list) and agents:
            picked = rng.choice(agents)
            if isinstance(picked, dict):
                target = picked
        key = rng.choice(_KEYS)
        positions = target.get("positions")
        if rng.random() < 0.15:
            target.pop(key, None)
        elif key == "positions" and isinstance(positions, list) and rng.random() < 0.5:
            points = [list(p) if isinstance(p, list) else p for p in positions]
            i = rng.randrange(len(points)) if points else 0
            if points and isinstance(points[i], list) and points[i]:
                points[i][rng.randrange(len(points[i]))] = rng.choice(_ODD_VALUES)
            target["positions"] = points
        else:
            target[key] = rng.choice(_ODD_VALUES)
    return payload


def test_mutated_bodies_are_parsed_or_refused_with_a_validation_error() -> None:
    """Whatever the body, the parser answers a request or a ValidationError (a 422), and an
    accepted request is well formed: one (T_obs, 2) float64 array per agent, unique ids."""
    rng = random.Random(7)
    accepted = refused = 0
    for _ in range(3000):
        try:
            parsed = parse(_mutated(rng))
        except ValidationError:
            refused += 1
            continue
        accepted += 1
        obs = parsed.obs  # type: ignore[attr-defined]
        assert obs.dtype == np.float64 and obs.shape[1:] == (8, 2)
        ids = [str(a) for a in parsed.agent_ids]  # type: ignore[attr-defined]
        assert len(set(ids)) == len(ids) == len(obs)
    assert accepted > 200 and refused > 1000  # both outcomes are exercised


def test_agent_limit_is_checked_before_validating_items() -> None:
    """A huge list of junk items is refused for its length at once, not item by item."""
    body = b'{"agents": [' + b",".join([b"1"] * 900_000) + b"]}"
    t0 = time.perf_counter()
    with pytest.raises(ValidationError, match="too many agents: 900000 > 5"):
        parse(body)
    assert time.perf_counter() - t0 < 2.0
    with pytest.raises(ValidationError, match="too many agents"):
        parse(b'{"agents": [' + b",".join([b"{}"] * 600_000) + b"]}")


@pytest.mark.parametrize("agent_id", [2**63, -(2**63) - 1, 10**19])
def test_agent_ids_beyond_64_bits_are_refused(agent_id: int) -> None:
    with pytest.raises(ValidationError) as info:
        parse({"agents": [walker(agent_id)]})
    assert info.value.details[0]["loc"][:4] == ["body", "agents", 0, "agent_id"]

"""HTTP request and response schemas of the prediction service, and request parsing.

Parsing is one call, :func:`parse_predict_request`. A plainly valid body is read with orjson and
type-checked on plain lists (a strict subset of the schema, same values); anything else goes
to pydantic-core, which accepts it or names every error (NaN/Infinity literals and
out-of-range numbers are refused as non-finite). Then the limits that depend on settings (agent
count, coordinate bound, timestamp step) are checked on numpy arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from trajops import STEP_S, T_OBS, T_PRED
from trajops.errors import ValidationError

MAX_SAMPLES = 20
"""Most samples one API request may ask for."""

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Point = tuple[FiniteFloat, FiniteFloat]
AgentId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)] | StrictInt
ModelRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]


class MalformedJSONError(ValidationError):
    """A request body that is not JSON at all."""

    code = "malformed_json"


_EXAMPLE_POSITIONS: Any = [[round(1.2 * 0.4 * i, 2), 0.0] for i in range(T_OBS)]


@dataclass(frozen=True)
class RequestLimits:
    """Limits that come from settings, checked after the schema."""

    max_agents: int = 1000
    max_coordinate: float = 1e4
    timestamp_tolerance_s: float = 0.05
    step_s: float = STEP_S


class AgentIn(BaseModel):
    """One observed agent: its last ``T_obs`` positions, oldest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: AgentId = Field(description="Caller's id of the agent, unique within the request.")
    positions: list[Point] = Field(
        min_length=T_OBS,
        max_length=T_OBS,
        description=f"Exactly {T_OBS} `[x, y]` positions in metres, {STEP_S} s apart, oldest first.",
    )
    timestamps: list[FiniteFloat] | None = Field(
        default=None,
        min_length=T_OBS,
        max_length=T_OBS,
        description=f"Optional seconds of each position; must step by {STEP_S} s.",
    )


class PredictRequest(BaseModel):
    """A prediction request: the agents of one scene, observed together."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "scene_id": "crossing-3",
                    "agents": [
                        {"agent_id": "ped-1", "positions": _EXAMPLE_POSITIONS},
                        {
                            "agent_id": 7,
                            "positions": [[x + 2.0, y + 1.0] for x, y in _EXAMPLE_POSITIONS],
                            "timestamps": [round(0.4 * i, 1) for i in range(T_OBS)],
                        },
                    ],
                    "num_samples": 1,
                }
            ]
        },
    )

    agents: list[AgentIn] = Field(min_length=1, description="Agents of one scene.")
    scene_id: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="Caller's scene id (for logs; all agents share one scene)."
    )
    model: ModelRef | None = Field(
        default=None,
        description="Registry alias (`champion`, `challenger`) or version; default: the "
        "service's default model.",
    )
    num_samples: Annotated[int, Field(strict=True, ge=1, le=MAX_SAMPLES)] = Field(
        default=1, description=f"Samples per agent (1..{MAX_SAMPLES}); >1 adds `samples`."
    )


@dataclass(frozen=True)
class ParsedPredictRequest:
    """A validated request with its positions as an array.

    Attributes:
        agent_ids: the agents' ids as sent (str or int), in order.
        obs: ``(N, T_obs, 2)`` float64 observed positions.
    """

    agent_ids: list[str | int]
    obs: np.ndarray
    scene_id: str | None = None
    model: str | None = None
    num_samples: int = 1


def _details(exc: PydanticValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()[:50]]


_AGENT_KEYS = frozenset({"agent_id", "positions", "timestamps"})
_REQUEST_KEYS = frozenset({"agents", "scene_id", "model", "num_samples"})
_MODEL_REF = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_Agent = tuple[str | int, list[Any], list[Any] | None]
_Body = TypeVar("_Body", bound=BaseModel)


def _finite_numbers(values: Any, n: int) -> bool:
    """``values`` is a list of ``n`` JSON numbers (not booleans) that are finite floats."""
    if type(values) is not list or len(values) != n:
        return False
    for v in values:
        t = type(v)
        if t is float:
            if not math.isfinite(v):
                return False
        elif t is not int:
            return False
    return True


def _fast_parse(
    body: bytes, max_coordinate: float
) -> tuple[list[_Agent], str | None, str | None, int] | None:
    """The request, when it is plainly valid; ``None`` for anything else (the schema decides).

    Accepts a strict subset of what :class:`PredictRequest` accepts and yields the same values,
    at a fraction of the cost: orjson, then type checks on plain lists. Every doubtful input
    (a malformed body, an unknown key, a wrong type, a non-finite value, a coordinate beyond
    ``±max_coordinate``, a 64-bit overflow) goes to pydantic and the limit checks, which
    accept it or explain the error.
    """
    low, high = -max_coordinate, max_coordinate
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= _REQUEST_KEYS:
        return None
    scene_id, model, num_samples = (
        data.get("scene_id"),
        data.get("model"),
        data.get("num_samples", 1),
    )
    if scene_id is not None and (type(scene_id) is not str or len(scene_id) > 128):
        return None
    if model is not None and (type(model) is not str or not _MODEL_REF.fullmatch(model)):
        return None
    if type(num_samples) is not int or not 1 <= num_samples <= MAX_SAMPLES:
        return None
    agents = data.get("agents")
    if type(agents) is not list or not agents:
        return None
    out: list[_Agent] = []
    for agent in agents:
        if type(agent) is not dict or not agent.keys() <= _AGENT_KEYS:
            return None
        agent_id: Any = agent.get("agent_id")
        positions: Any = agent.get("positions")
        t = type(agent_id)
        if not ((t is str and 1 <= len(agent_id) <= 128) or t is int):
            return None
        if type(positions) is not list or len(positions) != T_OBS:
            return None
        for point in positions:
            if type(point) is not list or len(point) != 2:
                return None
            x, y = point
            # exact int or float types (not bool); NaN and infinities fail the comparisons
            if (
                (type(x) is not float and type(x) is not int)
                or (type(y) is not float and type(y) is not int)
                or not (low <= x <= high and low <= y <= high)
            ):
                return None
        timestamps = agent.get("timestamps")
        if timestamps is not None and not _finite_numbers(timestamps, T_OBS):
            return None
        out.append((agent_id, positions, timestamps))
    return out, scene_id, model, num_samples


def _validated(model: type[_Body], body: bytes, what: str) -> _Body:
    """``body`` validated by ``model``; pydantic's errors as :class:`ValidationError`."""
    try:
        return model.model_validate_json(body)
    except PydanticValidationError as exc:
        details = _details(exc)
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedJSONError("request body is not valid JSON", details=details) from None
        raise ValidationError(f"invalid {what}", details=details) from None


def _schema_parse(body: bytes) -> tuple[list[_Agent], str | None, str | None, int]:
    req = _validated(PredictRequest, body, "prediction request")
    agents: list[_Agent] = [
        (a.agent_id, [list(p) for p in a.positions], a.timestamps) for a in req.agents
    ]
    return agents, req.scene_id, req.model, req.num_samples


def parse_predict_request(body: bytes, limits: RequestLimits) -> ParsedPredictRequest:
    """Parse and validate a raw ``/v1/predict`` body.

    Args:
        body: the raw JSON body.
        limits: settings-derived limits.

    Returns:
        The validated request and its ``(N, T_obs, 2)`` positions.

    Raises:
        ValidationError: malformed JSON, a schema violation, or a broken limit; ``details``
            point at each offending field.
    """
    parsed = _fast_parse(body, limits.max_coordinate)
    agents, scene_id, model, num_samples = parsed if parsed is not None else _schema_parse(body)
    if len(agents) > limits.max_agents:
        raise ValidationError(
            f"too many agents: {len(agents)} > {limits.max_agents}",
            details=[{"loc": ["body", "agents"], "msg": f"at most {limits.max_agents} agents"}],
        )
    seen: set[str] = set()
    for i, (agent_id, _, _) in enumerate(agents):
        key = str(agent_id)
        if key in seen:
            raise ValidationError(
                f"duplicate agent_id {key!r}",
                details=[{"loc": ["body", "agents", i, "agent_id"], "msg": "duplicate agent_id"}],
            )
        seen.add(key)
    obs = np.array([positions for _, positions, _ in agents], dtype=np.float64)  # (N, T_obs, 2)
    if parsed is None:  # the schema's path (the fast path checks the range as it goes)
        _check_range(obs, limits)
    _check_timestamps([ts for _, _, ts in agents], limits)
    return ParsedPredictRequest(
        agent_ids=[agent_id for agent_id, _, _ in agents],
        obs=obs,
        scene_id=scene_id,
        model=model,
        num_samples=num_samples,
    )


def _check_range(obs: np.ndarray, limits: RequestLimits) -> None:
    too_far = np.abs(obs) > limits.max_coordinate  # (N, T_obs, 2)
    if too_far.any():
        i, t, axis = (int(v) for v in np.argwhere(too_far)[0])
        raise ValidationError(
            f"coordinate beyond ±{limits.max_coordinate:g} m",
            details=[
                {
                    "loc": ["body", "agents", i, "positions", t, axis],
                    "msg": f"|coordinate| must be <= {limits.max_coordinate:g}",
                }
            ],
        )


def _check_timestamps(timestamps: list[list[Any] | None], limits: RequestLimits) -> None:
    timed = [i for i, ts in enumerate(timestamps) if ts is not None]
    if not timed:
        return
    ts = np.array([timestamps[i] for i in timed], dtype=np.float64)  # (M, T_obs)
    steps = np.diff(ts, axis=1)  # (M, T_obs - 1)
    bad = np.abs(steps - limits.step_s) > limits.timestamp_tolerance_s + 1e-9
    if bad.any():
        row, t = (int(v) for v in np.argwhere(bad)[0])
        raise ValidationError(
            "timestamps must increase by "
            f"{limits.step_s} s (±{limits.timestamp_tolerance_s} s) between positions",
            details=[
                {
                    "loc": ["body", "agents", timed[row], "timestamps", t + 1],
                    "msg": f"step {steps[row, t]:.3f} s, expected {limits.step_s} s",
                }
            ],
        )


RequestId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9._:\-]{1,64}$")]


class FeedbackRequest(BaseModel):
    """Ground truth for one served agent: where it really went after the prediction."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "request_id": "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7",
                    "agent_id": "ped-1",
                    "positions": [[round(3.36 + 0.48 * i, 2), 0.0] for i in range(1, T_PRED + 1)],
                }
            ]
        },
    )

    request_id: RequestId = Field(description="`request_id` of the prediction response.")
    agent_id: AgentId = Field(description="The agent's id as sent in the prediction request.")
    positions: list[Point] = Field(
        min_length=1,
        max_length=T_PRED,
        description=f"The true `[x, y]` positions after the observation, {STEP_S} s apart: "
        f"1..{T_PRED} (a partial future is scored on the steps given).",
    )


def parse_feedback_request(body: bytes, limits: RequestLimits) -> FeedbackRequest:
    """Parse and validate a raw ``/v1/feedback`` body (same rules and errors as predictions).

    Raises:
        ValidationError: malformed JSON, a schema violation or a coordinate beyond the limit.
    """
    req = _validated(FeedbackRequest, body, "feedback")
    pos = np.asarray(req.positions, dtype=np.float64)  # (n, 2)
    too_far = np.abs(pos) > limits.max_coordinate  # (n, 2)
    if too_far.any():
        t, axis = (int(v) for v in np.argwhere(too_far)[0])
        raise ValidationError(
            f"coordinate beyond ±{limits.max_coordinate:g} m",
            details=[
                {
                    "loc": ["body", "positions", t, axis],
                    "msg": f"|coordinate| must be <= {limits.max_coordinate:g}",
                }
            ],
        )
    return req


# --- responses (documentation of the wire format; the hot path serialises with orjson) -----


class ModelRefOut(BaseModel):
    name: str = Field(description="Registered model name.")
    version: str = Field(description="Registry version that produced the prediction.")
    alias: str | None = Field(description="Alias the request was routed through, if any.")
    run_id: str | None = Field(description="MLflow run that logged the model.")


class AgentPrediction(BaseModel):
    agent_id: str | int
    positions: list[tuple[float, float]] = Field(
        description=f"{T_PRED} predicted `[x, y]` positions, {STEP_S} s apart (the first sample)."
    )
    samples: list[list[tuple[float, float]]] | None = Field(
        default=None, description=f"`num_samples x {T_PRED} x 2` when num_samples > 1."
    )


class PredictResponse(BaseModel):
    request_id: str
    model: ModelRefOut
    variant: str = Field(description="Experiment arm that served the request (`default`).")
    step_s: float = STEP_S
    horizon_s: float = round(STEP_S * T_PRED, 6)
    predictions: list[AgentPrediction]
    latency_ms: float = Field(description="Server-side time spent on the request.")
    cached: bool = Field(description="Whether the prediction came from the cache.")


class FeedbackResponse(BaseModel):
    request_id: str
    agent_id: str | int
    model_version: str = Field(description="Version that made the scored prediction.")
    variant: str = Field(description="Experiment arm that served it.")
    n_steps: int = Field(description="Positions scored.")
    ade: float = Field(description="Mean displacement error over the steps given, metres.")
    fde: float = Field(description="Displacement error at the last step given, metres.")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorBody


class SetDefaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "3"}]})

    model: ModelRef = Field(description="Alias or version that serves unrouted traffic.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "Missing, invalid, expired or revoked API key."),
        (403, "The API key lacks the scope this route needs."),
        (404, "Unknown model alias or version."),
        (409, "Conflicts with what is stored (e.g. duplicate feedback)."),
        (413, "Request body larger than the limit."),
        (422, "Invalid input (schema, limits, malformed JSON)."),
        (429, "Rate limit of the API key exceeded; see Retry-After."),
        (503, "No model loaded for the requested reference."),
    )
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of ``codes`` (auth errors are added to every route)."""
    return {c: ERROR_RESPONSES[c] for c in (401, 403, 429, *codes)}

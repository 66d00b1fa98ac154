"""HTTP request and response schemas of the prediction service, and request parsing.

One schema per request type. :func:`parse_predict_request` decodes the body, refuses more raw
agent items than the agent limit before validating any of them (so a huge list cannot hold the
event loop), validates the rest with the schema, then checks the limits that depend on
settings (coordinate bound, timestamp step) on NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from trajops import STEP_S, T_OBS, T_PRED
from trajops.errors import ValidationError
from trajops.prediction.service import PredictionRequest

MAX_SAMPLES = 20
"""Most samples one API request may ask for."""

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Point = tuple[FiniteFloat, FiniteFloat]
AgentId = (
    Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
    | Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
)
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


def _details(exc: PydanticValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()[:50]]


_Body = TypeVar("_Body", bound=BaseModel)


def _validated(model: type[_Body], body: bytes, what: str) -> _Body:
    """``body`` validated by ``model``; pydantic's errors as :class:`ValidationError`."""
    try:
        return model.model_validate_json(body)
    except PydanticValidationError as exc:
        details = _details(exc)
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedJSONError("request body is not valid JSON", details=details) from None
        raise ValidationError(f"invalid {what}", details=details) from None


def _too_many_agents(n: int, limit: int) -> ValidationError:
    return ValidationError(
        f"too many agents: {n} > {limit}",
        details=[{"loc": ["body", "agents"], "msg": f"at most {limit} agents"}],
    )


def _check_agent_count(body: bytes, limit: int) -> None:
    """Refuse a body with more raw ``agents`` items than ``limit`` before validating any.

    Validating a list item by item costs time for every item (and an error entry for every bad
    one); the count of a decoded list is free. A body that does not decode is left to the
    schema, which names the error.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(data, dict):
        agents = data.get("agents")
        if isinstance(agents, list) and len(agents) > limit:
            raise _too_many_agents(len(agents), limit)


def parse_predict_request(body: bytes, limits: RequestLimits) -> PredictionRequest:
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
    _check_agent_count(body, limits.max_agents)
    req = _validated(PredictRequest, body, "prediction request")
    if len(req.agents) > limits.max_agents:  # a body only the schema's parser could decode
        raise _too_many_agents(len(req.agents), limits.max_agents)
    seen: set[str] = set()
    for i, agent in enumerate(req.agents):
        key = str(agent.agent_id)
        if key in seen:
            raise ValidationError(
                f"duplicate agent_id {key!r}",
                details=[{"loc": ["body", "agents", i, "agent_id"], "msg": "duplicate agent_id"}],
            )
        seen.add(key)
    obs = np.array([a.positions for a in req.agents], dtype=np.float64)  # (N, T_obs, 2)
    _check_range(obs, limits)
    _check_timestamps([a.timestamps for a in req.agents], limits)
    return PredictionRequest(
        agent_ids=[a.agent_id for a in req.agents],
        obs=obs,
        scene_id=req.scene_id,
        model=req.model,
        num_samples=req.num_samples,
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

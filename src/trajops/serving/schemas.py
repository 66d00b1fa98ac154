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
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator
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
        description="Registry alias (`champion`, `challenger`) or version, spelt as in the CLI "
        "(`3`, `v3` and `03` are one version); default: the service's default model.",
    )
    num_samples: Annotated[int, Field(strict=True, ge=1, le=MAX_SAMPLES)] = Field(
        default=1, description=f"Samples per agent (1..{MAX_SAMPLES}); >1 adds `samples`."
    )


def _details(exc: PydanticValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()[:50]]


_Body = TypeVar("_Body", bound=BaseModel)


def validated(model: type[_Body], body: bytes, what: str) -> _Body:
    """``body`` validated by ``model``; pydantic's errors as :class:`ValidationError`."""
    try:
        return model.model_validate_json(body)
    except PydanticValidationError as exc:
        details = _details(exc)
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedJSONError("request body is not valid JSON", details=details) from None
        raise ValidationError(f"invalid {what}", details=details) from None


def too_many_agents(n: int, limit: int) -> ValidationError:
    return ValidationError(
        f"too many agents: {n} > {limit}",
        details=[{"loc": ["body", "agents"], "msg": f"at most {limit} agents"}],
    )


def check_agent_count(body: bytes, limit: int) -> None:
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
            raise too_many_agents(len(agents), limit)


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
    check_agent_count(body, limits.max_agents)
    req = validated(PredictRequest, body, "prediction request")
    if len(req.agents) > limits.max_agents:  # a body only the schema's parser could decode
        raise too_many_agents(len(req.agents), limits.max_agents)
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


class AgentTruth(BaseModel):
    """Where one agent really went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: AgentId = Field(description="The agent's id as sent in the prediction request.")
    positions: list[Point] = Field(
        min_length=1,
        max_length=T_PRED,
        description=f"The true `[x, y]` positions after the observation, {STEP_S} s apart: "
        f"1..{T_PRED} (a partial future is scored on the steps given).",
    )


class FeedbackRequest(BaseModel):
    """Ground truth for served agents: where they really went after the prediction.

    One agent (``agent_id`` + ``positions``) or several of one request (``agents``)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "request_id": "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7",
                    "agent_id": "ped-1",
                    "positions": [[round(3.36 + 0.48 * i, 2), 0.0] for i in range(1, T_PRED + 1)],
                },
                {
                    "request_id": "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7",
                    "agents": [
                        {"agent_id": "ped-1", "positions": [[3.84, 0.0], [4.32, 0.0]]},
                        {"agent_id": 7, "positions": [[5.4, 1.0]]},
                    ],
                },
            ]
        },
    )

    request_id: RequestId = Field(description="`request_id` of the prediction response.")
    agent_id: AgentId | None = Field(default=None, description="One agent's id (with positions).")
    positions: list[Point] | None = Field(
        default=None,
        min_length=1,
        max_length=T_PRED,
        description=f"That agent's true positions, {STEP_S} s apart: 1..{T_PRED}.",
    )
    agents: list[AgentTruth] | None = Field(
        default=None, min_length=1, description="Several agents of the request at once."
    )

    @model_validator(mode="after")
    def _one_form(self) -> FeedbackRequest:
        single = self.agent_id is not None or self.positions is not None
        if single == (self.agents is not None):
            raise ValueError("give either agent_id with positions, or agents")
        if single and (self.agent_id is None or self.positions is None):
            raise ValueError("agent_id and positions go together")
        return self

    def truths(self) -> list[AgentTruth]:
        """Every agent's truth, in the order given."""
        if self.agents is not None:
            return list(self.agents)
        assert self.agent_id is not None and self.positions is not None
        return [AgentTruth(agent_id=self.agent_id, positions=self.positions)]


def parse_feedback_request(body: bytes, limits: RequestLimits) -> FeedbackRequest:
    """Parse and validate a raw ``/v1/feedback`` body (same rules and errors as predictions).

    Raises:
        ValidationError: malformed JSON, a schema violation, too many agents, a duplicate
            agent or a coordinate beyond the limit.
    """
    check_agent_count(body, limits.max_agents)
    req = validated(FeedbackRequest, body, "feedback")
    truths = req.truths()
    if len(truths) > limits.max_agents:
        raise too_many_agents(len(truths), limits.max_agents)
    seen: set[str] = set()
    for i, truth in enumerate(truths):
        where = ["body", "positions"] if req.agents is None else ["body", "agents", i, "positions"]
        key = str(truth.agent_id)
        if key in seen:
            raise ValidationError(
                f"duplicate agent_id {key!r}",
                details=[{"loc": ["body", "agents", i, "agent_id"], "msg": "duplicate agent_id"}],
            )
        seen.add(key)
        pos = np.asarray(truth.positions, dtype=np.float64)  # (n, 2)
        too_far = np.abs(pos) > limits.max_coordinate  # (n, 2)
        if too_far.any():
            t, axis = (int(v) for v in np.argwhere(too_far)[0])
            raise ValidationError(
                f"coordinate beyond ±{limits.max_coordinate:g} m",
                details=[
                    {
                        "loc": [*where, t, axis],
                        "msg": f"|coordinate| must be <= {limits.max_coordinate:g}",
                    }
                ],
            )
    return req


class SetDefaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "3"}]})

    model: ModelRef = Field(
        description="Alias or version (`3`, `v3`: one version) that serves unrouted traffic."
    )

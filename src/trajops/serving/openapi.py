"""The wire format's documentation: response bodies and error entries for OpenAPI.

Routes render responses with orjson; these models describe them (``response_model``) and the
one error shape every route shares.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from trajops import STEP_S, T_PRED
from trajops.evaluation.metrics import MISS_THRESHOLD_M


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


class TrackWaiting(BaseModel):
    agent_id: str | int
    history_s: float = Field(description="Seconds of track so far (2.8 s are needed).")


class TrackScore(BaseModel):
    agent_id: str | int
    request_id: str = Field(description="The frame whose forecast this scores.")
    t: float = Field(description="That frame's time.")
    model_version: str
    variant: str
    ade: float
    fde: float


class TrackResponse(BaseModel):
    """Forecasts of the agents with enough track, and earlier forecasts scored by this frame."""

    request_id: str
    scene_id: str
    t: float
    model: ModelRefOut | None = Field(description="None when no agent had enough track.")
    variant: str | None
    step_s: float = STEP_S
    horizon_s: float = round(STEP_S * T_PRED, 6)
    predictions: list[AgentPrediction]
    waiting: list[TrackWaiting]
    scored: list[TrackScore]


class AgentScore(BaseModel):
    agent_id: str | int
    model_version: str = Field(description="Version that made the scored prediction.")
    variant: str = Field(description="Experiment arm that served it.")
    n_steps: int = Field(description="Positions scored.")
    ade: float = Field(description="Mean displacement error over the steps given, metres.")
    fde: float = Field(description="Displacement error at the last step given, metres.")


class FeedbackResponse(AgentScore):
    """The answer to one agent's feedback."""

    request_id: str


class FeedbackScoresResponse(BaseModel):
    """The answer to feedback for several agents (``agents``), in the order given."""

    request_id: str
    scores: list[AgentScore]


class PerformanceRow(BaseModel):
    model_version: str
    variant: str
    scene_key: str | None = Field(None, description="Scene pseudonym (`by=scene` only).")
    n: int = Field(description="Scored agents in the window.")
    ade: float
    fde: float = Field(description="Mean error at the last position given, metres.")
    miss_rate: float = Field(description=f"Share of them with FDE > {MISS_THRESHOLD_M} m.")
    test_ade: float | None = Field(description="Offline ADE logged at training.")
    test_fde: float | None


class PerformanceResponse(BaseModel):
    window: str
    window_s: float
    versions: list[PerformanceRow]


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

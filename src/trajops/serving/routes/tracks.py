"""``POST /v1/tracks``: a tracker's frame in, forecasts out; earlier forecasts scored by the
service itself as the realised positions arrive (:mod:`trajops.prediction.streaming`)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from trajops import STEP_S
from trajops.errors import ValidationError
from trajops.prediction.streaming import Frame, FrameAnswer, TrackService
from trajops.serving.middleware import (
    MODEL_VERSION_KEY,
)
from trajops.serving.openapi import TrackResponse, error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.serving.routes.predict import HORIZON_S, body_doc, caller_of, render_prediction
from trajops.serving.schemas import (
    AgentId,
    FiniteFloat,
    ModelRef,
    Point,
    RequestLimits,
    check_agent_count,
    too_many_agents,
    validated,
)

router = APIRouter()


class Sighting(BaseModel):
    """Where the tracker sees one agent in this frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: AgentId = Field(description="The tracker's id of the agent, stable across frames.")
    position: Point = Field(description="`[x, y]` in metres.")


class TrackFrame(BaseModel):
    """One frame of a scene: every agent the tracker sees at time ``t``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "scene_id": "crossing-3",
                    "t": 1765100000.4,
                    "agents": [
                        {"agent_id": "ped-1", "position": [3.2, 1.0]},
                        {"agent_id": 7, "position": [5.0, -2.5]},
                    ],
                }
            ]
        },
    )

    scene_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The scene (camera, crossing): an agent's track is kept per scene."
    )
    t: FiniteFloat = Field(description="Seconds of this frame (any origin, e.g. Unix time).")
    agents: list[Sighting] = Field(min_length=1, description="Agents seen in this frame.")
    model: ModelRef | None = Field(
        default=None, description="Alias or version; default: the service's default model."
    )


def parse_track_frame(body: bytes, limits: RequestLimits) -> Frame:
    """Parse and validate a raw ``/v1/tracks`` body (same rules and errors as predictions).

    Raises:
        ValidationError: malformed JSON, a schema violation, too many agents, a duplicate
            agent or a coordinate beyond the limit; ``details`` point at the field.
    """
    check_agent_count(body, limits.max_agents)
    req = validated(TrackFrame, body, "track frame")
    if len(req.agents) > limits.max_agents:
        raise too_many_agents(len(req.agents), limits.max_agents)
    seen: set[str] = set()
    for i, agent in enumerate(req.agents):
        key = str(agent.agent_id)
        if key in seen:
            raise ValidationError(
                f"duplicate agent_id {key!r} in one frame",
                details=[{"loc": ["body", "agents", i, "agent_id"], "msg": "duplicate agent_id"}],
            )
        seen.add(key)
    positions = np.array([a.position for a in req.agents], dtype=np.float64)  # (N, 2)
    too_far = np.abs(positions) > limits.max_coordinate
    if too_far.any():
        i, axis = (int(v) for v in np.argwhere(too_far)[0])
        raise ValidationError(
            f"coordinate beyond ±{limits.max_coordinate:g} m",
            details=[
                {
                    "loc": ["body", "agents", i, "position", axis],
                    "msg": f"|coordinate| must be <= {limits.max_coordinate:g}",
                }
            ],
        )
    return Frame(
        scene_id=req.scene_id,
        t=req.t,
        agent_ids=[a.agent_id for a in req.agents],
        positions=positions,
        model=req.model,
    )


def render_frame(frame: Frame, out: FrameAnswer, request_id: str) -> dict[str, Any]:
    """The ``/v1/tracks`` response body."""
    body: dict[str, Any] = {
        "request_id": request_id,
        "scene_id": frame.scene_id,
        "t": frame.t,
        "model": None,
        "variant": None,
        "step_s": STEP_S,
        "horizon_s": HORIZON_S,
        "predictions": [],
    }
    if out.answer is not None:
        rendered = render_prediction(out.answer, [frame.agent_ids[i] for i in out.forecast])
        for key in ("model", "variant", "predictions", "latency_ms", "cached"):
            body[key] = rendered[key]
    body["waiting"] = [
        {"agent_id": frame.agent_ids[i], "history_s": span} for i, span in out.waiting
    ]
    body["scored"] = [
        {
            "agent_id": frame.agent_ids[i],
            "request_id": r.forecast.request_id,
            "t": r.forecast.t0,
            "model_version": r.forecast.model_version,
            "variant": r.forecast.variant,
            "ade": round(r.ade, 4),
            "fde": round(r.fde, 4),
        }
        for i, r in out.realised
    ]
    return body


@router.post(
    "/v1/tracks",
    tags=["predict"],
    summary="Send a tracker's frame; get forecasts, and earlier forecasts scored as they come true",
    response_model=TrackResponse,
    responses=error_responses(404, 409, 413, 422, 503),
    openapi_extra=body_doc(TrackFrame),
)
async def tracks(request: Request) -> Response:
    """One frame of a scene: the position of every agent the tracker sees at time ``t``.

    The service keeps each agent's recent track (shared through Redis when configured) and
    forecasts every agent whose track covers the model's 8 observed steps (irregular frame
    times are resampled to the model's 0.4 s step; a gap over 1 s restarts the track). As later
    frames arrive it scores its own earlier forecasts against where the agents went (online
    ADE/FDE per model, variant and scene; no feedback call needed). A frame not after an
    agent's last sighting is a 409 (the same frame re-sent is taken again).
    """
    state = request.app.state
    tracker: TrackService = state.tracks
    frame = parse_track_frame(await request.body(), state.limits)
    caller = caller_of(request.scope, state.settings)
    out = await tracker.frame(
        frame,
        key_id=caller.key_id,
        request_id=caller.request_id,
        started=caller.started,
        may_pin=caller.may_pin,
    )
    if out.answer is not None:
        request.scope[MODEL_VERSION_KEY] = out.answer.result.model.version
    return OrjsonResponse(
        render_frame(frame, out, caller.request_id),
        headers={"x-request-id": caller.request_id},
    )

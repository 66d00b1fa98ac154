"""``/v1/predict`` and ``/v1/feedback``: parse the body, call one service method, render."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Scope

from trajops import STEP_S, T_PRED
from trajops._ids import ordered_hex, random_hex
from trajops.errors import ServiceUnavailable
from trajops.monitoring.accuracy import PredictionNotStored
from trajops.prediction.service import Answer, PredictionService
from trajops.security.policy import Scope as KeyScope
from trajops.security.policy import has_scope
from trajops.serving.deps import (
    LimitsDep,
    MetricsDep,
    MonitorDep,
    OfflineDep,
    ServiceDep,
)
from trajops.serving.middleware import (
    KEY_ID_KEY,
    KEY_SCOPES_KEY,
    MODEL_VERSION_KEY,
    REQUEST_ID_KEY,
    START_KEY,
)
from trajops.serving.openapi import (
    FeedbackResponse,
    FeedbackScoresResponse,
    PredictResponse,
    error_responses,
)
from trajops.serving.responses import OrjsonResponse
from trajops.serving.schemas import (
    FeedbackRequest,
    PredictRequest,
    parse_feedback_request,
    parse_predict_request,
)
from trajops.settings import Settings

router = APIRouter()

HORIZON_S = round(STEP_S * T_PRED, 6)
FEEDBACK_WAIT_S = 10.0
"""Longest a feedback call waits for the rows of a prediction this service answered."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")  # fits the stores' request_id columns


def request_id_of(scope: Scope, *, time_ordered: bool = True) -> str:
    """The caller's ``X-Request-ID`` when it is well formed, else a fresh id.

    A fresh id is time-ordered (a UUIDv7: the prediction log's request index grows at its
    end, see :mod:`trajops._ids`), or random when ``time_ordered`` is false: with
    ``TRAJOPS_STORE_TIME_BUCKET_S`` set, stored prediction times are coarsened, and an id
    that carries the time to the millisecond would undo that.
    """
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _REQUEST_ID.match(given):
                return given
            break
    return ordered_hex() if time_ordered else random_hex()


@dataclass(frozen=True)
class Caller:
    """Who sent a forecast request, and when."""

    request_id: str
    key_id: str | None
    started: float
    """``time.perf_counter()`` at the request's arrival."""
    may_pin: bool
    """Whether the caller may name any version (the ``pin`` scope, or no auth at all)."""


def caller_of(scope: Scope, settings: Settings) -> Caller:
    """The caller of a forecast request; its request id is recorded in the scope (for the
    metrics and the audit row)."""
    request_id = request_id_of(scope, time_ordered=not settings.store_time_bucket_s)
    scope[REQUEST_ID_KEY] = request_id
    return Caller(
        request_id=request_id,
        key_id=scope.get(KEY_ID_KEY),
        started=scope.get(START_KEY, time.perf_counter()),
        may_pin=not settings.auth_enabled or has_scope(scope.get(KEY_SCOPES_KEY, ()), KeyScope.PIN),
    )


def body_doc(model: type[Any]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that parses its raw body with ``model``."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def render_prediction(answer: Answer, agent_ids: list[str | int]) -> dict[str, Any]:
    """The ``/v1/predict`` response body (NumPy arrays inside, for orjson)."""
    result = answer.result
    preds = result.predictions  # (N, T_pred, 2) or (N, K, T_pred, 2)
    if preds.ndim == 3:
        items = [{"agent_id": a, "positions": preds[i]} for i, a in enumerate(agent_ids)]
    else:
        items = [
            {"agent_id": a, "positions": preds[i, 0], "samples": preds[i]}
            for i, a in enumerate(agent_ids)
        ]
    model = result.model
    return {
        "request_id": answer.request_id,
        "model": {
            "name": model.name,
            "version": model.version,
            "alias": result.alias,
            "run_id": model.run_id,
        },
        "variant": result.variant,
        "step_s": STEP_S,
        "horizon_s": HORIZON_S,
        "predictions": items,
        "latency_ms": answer.latency_ms,
        "cached": result.cached,
    }


async def predict_exchange(state: Any, scope: Scope, body: bytes) -> tuple[dict[str, Any], str]:
    """The whole ``/v1/predict`` exchange after auth: parse, one service call, render.

    Args:
        state: the app's state (settings, limits, the prediction service).
        scope: the request's ASGI scope; the request id and the model version are recorded
            in it for the metrics and the audit row.
        body: the raw request body.

    Returns:
        The response body (NumPy arrays inside, for orjson) and the request id.
    """
    service: PredictionService = state.service
    parsed = parse_predict_request(body, state.limits)
    caller = caller_of(scope, state.settings)
    answer = await service.answer(
        parsed,
        key_id=caller.key_id,
        request_id=caller.request_id,
        started=caller.started,
        may_pin=caller.may_pin,
    )
    scope[MODEL_VERSION_KEY] = answer.result.model.version
    return render_prediction(answer, parsed.agent_ids), caller.request_id


@router.post(
    "/v1/predict",
    tags=["predict"],
    summary="Forecast the next 4.8 s of every agent of one scene",
    response_model=PredictResponse,
    responses=error_responses(404, 413, 422, 503),
    openapi_extra=body_doc(PredictRequest),
)
async def predict(request: Request) -> Response:
    """Predict 12 future positions (0.4 s apart) for each agent from its last 8 positions.

    All agents of one request are one scene: they are each other's neighbours. Every agent's
    input and forecast is logged (agent ids pseudonymised) for feedback scoring and drift.
    """
    content, request_id = await predict_exchange(
        request.app.state, request.scope, await request.body()
    )
    return OrjsonResponse(content, headers={"x-request-id": request_id})


@router.post(
    "/v1/feedback",
    tags=["monitoring"],
    summary="Report where agents really went; scored against their logged forecasts",
    response_model=FeedbackResponse | FeedbackScoresResponse,
    responses=error_responses(404, 409, 413, 422, 503),
    openapi_extra=body_doc(FeedbackRequest),
)
async def feedback(
    request: Request,
    monitor: MonitorDep,
    metrics: MetricsDep,
    offline: OfflineDep,
    limits: LimitsDep,
    service: ServiceDep,
) -> Response:
    """Ground truth for agents of an earlier prediction (one, or several with ``agents``):
    ADE/FDE over the steps given, recorded all or nothing.

    A request this service answered is never a 404: while its rows are still on their way to
    the store the call waits for them, then answers 503 with ``Retry-After``. 404 for unknown
    ids, 409 for a second report of the same request and agent, 503 while the store is down.
    """
    req = parse_feedback_request(await request.body(), limits)
    request.scope[REQUEST_ID_KEY] = req.request_id
    truths = req.truths()
    pairs = [(str(t.agent_id), [list(p) for p in t.positions]) for t in truths]  # (n, 2) each
    deadline = time.monotonic() + FEEDBACK_WAIT_S
    while True:
        try:
            scores = await anyio.to_thread.run_sync(
                lambda: monitor.feedback(request_id=req.request_id, truths=pairs)
            )
            break
        except PredictionNotStored:
            if not service.answered_recently(req.request_id):
                raise
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    f"the prediction {req.request_id!r} is still being written; retry shortly",
                    details=[{"loc": ["body", "request_id"], "msg": "not stored yet"}],
                ) from None
            await asyncio.sleep(0.05)
    request.scope[MODEL_VERSION_KEY] = scores[0].model_version
    out = []
    for truth, score in zip(truths, scores, strict=True):
        metrics.observe_online(
            model_version=score.model_version,
            variant=score.variant,
            scene_key=score.scene_key,
            ade=score.ade,
            fde=score.fde,
            n_steps=score.n_steps,
        )
        out.append(
            {
                "agent_id": truth.agent_id,
                "model_version": score.model_version,
                "variant": score.variant,
                "n_steps": score.n_steps,
                "ade": score.ade,
                "fde": score.fde,
            }
        )
    offline.prefetch(scores[0].model_version)  # offline ADE next to the online one in /metrics
    if req.agents is None:
        return OrjsonResponse({"request_id": req.request_id, **out[0]})
    return OrjsonResponse({"request_id": req.request_id, "scores": out})

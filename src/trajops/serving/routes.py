"""HTTP routes of the prediction service: thin, schema in, service call, orjson out."""

from __future__ import annotations

import re
import time
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Scope

from trajops import STEP_S, T_PRED
from trajops._ids import ordered_hex, random_hex
from trajops.monitoring.service import Monitor
from trajops.serving._store import store_status
from trajops.serving.cache import ROUND_DECIMALS
from trajops.serving.deps import (
    CacheDep,
    LimitsDep,
    MetricsDep,
    MigrationsDep,
    MonitorDep,
    OfflineDep,
    PoolDep,
)
from trajops.serving.experiments import ExperimentRuntime
from trajops.serving.middleware import MODEL_VERSION_KEY, REQUEST_ID_KEY, START_KEY
from trajops.serving.prediction import PredictionService
from trajops.serving.responses import OrjsonResponse
from trajops.serving.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
    SetDefaultRequest,
    error_responses,
    parse_feedback_request,
    parse_predict_request,
)

router = APIRouter()

HORIZON_S = round(STEP_S * T_PRED, 6)
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


def _body_doc(model: type[PredictRequest] | type[FeedbackRequest]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/v1/predict",
    tags=["predict"],
    summary="Forecast the next 4.8 s of every agent of one scene",
    response_model=PredictResponse,
    responses=error_responses(404, 413, 422, 503),
    openapi_extra=_body_doc(PredictRequest),
)
async def predict(request: Request) -> Response:
    """Predict 12 future positions (0.4 s apart) for each agent from its last 8 positions.

    All agents of one request are one scene: they are each other's neighbours. Every agent's
    input and forecast is logged (agent ids pseudonymised) for feedback scoring and drift.
    """
    # Served by PredictFastPath (below FastAPI's routing) in the assembled app; this route
    # documents the endpoint in OpenAPI and answers the same way when reached directly.
    content, request_id = await answer_prediction(
        request.app.state, request.scope, await request.body()
    )
    return OrjsonResponse(content, headers={"x-request-id": request_id})


async def answer_prediction(state: Any, scope: Scope, body: bytes) -> tuple[dict[str, Any], str]:
    """The whole ``/v1/predict`` exchange after auth: parse, predict, log, answer.

    Args:
        state: the app's state (service, monitor, experiments).
        scope: the request's ASGI scope; the model version and request id are recorded in it
            for the metrics and the audit row.
        body: the raw request body.

    Returns:
        The response body (numpy arrays inside, for orjson) and the request id.

    Raises:
        TrajopsError: invalid input (422), unknown model (404), no model loaded (503).
    """
    service: PredictionService = state.service
    monitor: Monitor = state.monitor
    experiments: ExperimentRuntime = state.experiments
    # The raw body is parsed once (orjson for plainly valid bodies, pydantic-core for the
    # rest) with limits from settings; the schema still documents the body in OpenAPI.
    parsed = parse_predict_request(body, service.limits)
    unit_id = experiments.unit_id(
        scope, agent_id=str(parsed.agent_ids[0]), scene_id=parsed.scene_id
    )
    result = await service.predict(
        obs=parsed.obs,
        num_samples=parsed.num_samples,
        model_ref=parsed.model,
        unit_id=unit_id,
    )
    model = result.model
    scope[MODEL_VERSION_KEY] = model.version
    preds = result.predictions  # (N, T_pred, 2) or (N, K, T_pred, 2)
    if parsed.num_samples == 1:
        items = [{"agent_id": a, "positions": preds[i]} for i, a in enumerate(parsed.agent_ids)]
    else:
        items = [
            {"agent_id": a, "positions": preds[i, 0], "samples": preds[i]}
            for i, a in enumerate(parsed.agent_ids)
        ]
    request_id = request_id_of(scope, time_ordered=not state.settings.store_time_bucket_s)
    scope[REQUEST_ID_KEY] = request_id
    started = scope.get(START_KEY, time.perf_counter())
    latency_ms = round((time.perf_counter() - started) * 1e3, 3)
    agent_ids = [str(a) for a in parsed.agent_ids]
    # Handed to the log writer (cached answers too: they were served all the same).
    monitor.log_prediction(
        request_id=request_id,
        model_name=model.name,
        model_version=model.version,
        variant=result.variant,
        agent_ids=agent_ids,
        scene_id=parsed.scene_id,
        obs=result.inputs,
        obs_decimals=ROUND_DECIMALS,
        pred=preds if parsed.num_samples == 1 else preds[:, 0],
        step_s=STEP_S,
        latency_ms=latency_ms,
    )
    experiments.record(
        result, request_id=request_id, obs=parsed.obs, agent_ids=agent_ids, latency_ms=latency_ms
    )
    content = {
        "request_id": request_id,
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
        "latency_ms": latency_ms,
        "cached": result.cached,
    }
    return content, request_id


@router.post(
    "/v1/feedback",
    tags=["monitoring"],
    summary="Report where an agent really went; scored against its logged forecast",
    response_model=FeedbackResponse,
    responses=error_responses(404, 409, 413, 422, 503),
    openapi_extra=_body_doc(FeedbackRequest),
)
async def feedback(
    request: Request,
    monitor: MonitorDep,
    metrics: MetricsDep,
    offline: OfflineDep,
    limits: LimitsDep,
) -> Response:
    """Ground truth for one agent of an earlier prediction: ADE/FDE over the steps given.

    404 while the prediction is unknown (or still in the write queue: retry in a second),
    409 for a second report of the same request and agent, 503 while the store is down.
    """
    req = parse_feedback_request(await request.body(), limits)
    request.scope[REQUEST_ID_KEY] = req.request_id
    positions = [list(p) for p in req.positions]  # (n, 2)
    score = await anyio.to_thread.run_sync(
        lambda: monitor.feedback(
            request_id=req.request_id, agent_id=str(req.agent_id), positions=positions
        )
    )
    request.scope[MODEL_VERSION_KEY] = score.model_version
    metrics.online_ade.labels(score.model_version, score.variant).observe(score.ade)
    metrics.online_fde.labels(score.model_version, score.variant).observe(score.fde)
    offline.prefetch(score.model_version)  # offline ADE next to the online one in /metrics
    return OrjsonResponse(
        {
            "request_id": score.request_id,
            "agent_id": req.agent_id,
            "model_version": score.model_version,
            "variant": score.variant,
            "n_steps": score.n_steps,
            "ade": score.ade,
            "fde": score.fde,
        }
    )


@router.get("/v1/models", tags=["models"], summary="Loaded versions, aliases and load times")
async def list_models(pool: PoolDep) -> Response:
    return OrjsonResponse(pool.snapshot())


@router.post(
    "/v1/models/reload",
    tags=["models"],
    summary="Re-read aliases from the registry now and swap in moved ones",
    responses=error_responses(503),
)
async def reload_models(pool: PoolDep) -> Response:
    return OrjsonResponse(await pool.refresh())


@router.put(
    "/v1/models/default",
    tags=["models"],
    summary="Choose the alias or version that serves unrouted traffic (this process)",
    responses=error_responses(404, 422, 503),
)
async def set_default_model(body: SetDefaultRequest, pool: PoolDep) -> Response:
    """The model is loaded and smoke-tested first; a bad reference changes nothing."""
    return OrjsonResponse(await pool.set_default(body.model))


@router.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
async def healthz() -> Response:
    return OrjsonResponse({"status": "ok"})


@router.get(
    "/readyz",
    tags=["ops"],
    summary="Readiness per dependency (503 while the default model is not loaded)",
)
async def readyz(
    pool: PoolDep, cache: CacheDep, monitor: MonitorDep, migrations: MigrationsDep
) -> Response:
    """``model`` is required; the registry, the cache and the store are reported but not
    required: a loaded model keeps serving from memory while the registry is down, a broken
    cache only costs speed, and logs are spooled (and replayed) while the store is down."""
    checks = {
        "model": {**pool.model_status(), "required": True},
        "registry": {**await pool.registry_status(), "required": False},
        "cache": {**await cache.status(), "required": False},
        "store": {**await store_status(monitor, migrations), "required": False},
    }
    ready = all(c["ok"] for c in checks.values() if c["required"])
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics of this process")
async def metrics(metrics: MetricsDep) -> Response:
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)

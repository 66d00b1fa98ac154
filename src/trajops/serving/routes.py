"""HTTP routes of the prediction service: thin, schema in, service call, orjson out."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from trajops import STEP_S, T_PRED
from trajops.serving.deps import CacheDep, MetricsDep, PoolDep, ServiceDep
from trajops.serving.middleware import MODEL_VERSION_KEY, START_KEY
from trajops.serving.responses import OrjsonResponse
from trajops.serving.schemas import (
    ERROR_RESPONSES,
    PredictRequest,
    PredictResponse,
    SetDefaultRequest,
    parse_predict_request,
)

router = APIRouter()

HORIZON_S = round(STEP_S * T_PRED, 6)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()  # as random as uuid4, a third of the cost


def _body_doc(model: type[PredictRequest]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/v1/predict",
    tags=["predict"],
    summary="Forecast the next 4.8 s of every agent of one scene",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_body_doc(PredictRequest),
)
async def predict(request: Request, service: ServiceDep) -> Response:
    """Predict 12 future positions (0.4 s apart) for each agent from its last 8 positions.

    All agents of one request are one scene: they are each other's neighbours.
    """
    # The raw body is parsed by pydantic-core in one pass (faster than FastAPI's json.loads +
    # validation) with limits from settings; the schema still documents the body in OpenAPI.
    parsed = parse_predict_request(await request.body(), service.limits)
    req = parsed.request
    result = await service.predict(obs=parsed.obs, num_samples=req.num_samples, model_ref=req.model)
    model = result.model
    request.scope[MODEL_VERSION_KEY] = model.version
    preds = result.predictions  # (N, T_pred, 2) or (N, K, T_pred, 2)
    if req.num_samples == 1:
        items = [{"agent_id": a.agent_id, "positions": preds[i]} for i, a in enumerate(req.agents)]
    else:
        items = [
            {"agent_id": a.agent_id, "positions": preds[i, 0], "samples": preds[i]}
            for i, a in enumerate(req.agents)
        ]
    request_id = _request_id(request)
    started = request.scope.get(START_KEY, time.perf_counter())
    body = {
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
        "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
        "cached": result.cached,
    }
    return OrjsonResponse(body, headers={"x-request-id": request_id})


@router.get("/v1/models", tags=["models"], summary="Loaded versions, aliases and load times")
async def list_models(pool: PoolDep) -> Response:
    return OrjsonResponse(pool.snapshot())


@router.post(
    "/v1/models/reload",
    tags=["models"],
    summary="Re-read aliases from the registry now and swap in moved ones",
    responses={503: ERROR_RESPONSES[503]},
)
async def reload_models(pool: PoolDep) -> Response:
    return OrjsonResponse(await pool.refresh())


@router.put(
    "/v1/models/default",
    tags=["models"],
    summary="Choose the alias or version that serves unrouted traffic (this process)",
    responses={k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
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
async def readyz(pool: PoolDep, cache: CacheDep) -> Response:
    """``model`` is required; the registry and the cache are reported but not required: a
    loaded model keeps serving from memory while the registry is down, and a broken cache
    only costs speed."""
    checks = {
        "model": {**pool.model_status(), "required": True},
        "registry": {**await pool.registry_status(), "required": False},
        "cache": {**await cache.status(), "required": False},
    }
    ready = all(c["ok"] for c in checks.values() if c["required"])
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics of this process")
async def metrics(metrics: MetricsDep) -> Response:
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)

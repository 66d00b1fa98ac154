"""Operations endpoints: liveness, readiness per dependency, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from trajops.serving.deps import CacheDep, MetricsDep, MigrationsDep, MonitorDep, PoolDep
from trajops.serving.responses import OrjsonResponse
from trajops.store.lifecycle import store_status

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return OrjsonResponse({"status": "ok"})


@router.get(
    "/readyz", summary="Readiness per dependency (503 while the default model is not loaded)"
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
        "store": {**await store_status(monitor.health, migrations), "required": False},
    }
    ready = all(c["ok"] for c in checks.values() if c["required"])
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics of this process")
async def metrics(metrics: MetricsDep) -> Response:
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)

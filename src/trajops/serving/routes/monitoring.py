"""HTTP routes of ``/v1/monitoring``: online accuracy, drift reports and runs, alerts.

Thin: parse the query, call the monitor or the jobs (blocking store work in a worker thread),
answer with orjson. Every route here needs the ``admin`` scope (see
:mod:`trajops.security.policy`).
"""

from __future__ import annotations

import pathlib
from functools import partial
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Query
from starlette.responses import FileResponse, Response

from trajops._duration import parse_duration
from trajops.errors import NotFoundError
from trajops.monitoring.accuracy import grouping
from trajops.monitoring.drift_job import get_report, list_reports
from trajops.monitoring.scene_drift import run_scene_drift
from trajops.serving.deps import JobsDep, MonitorDep, OfflineDep, SettingsDep
from trajops.serving.openapi import PerformanceResponse, error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.store.lifecycle import store_call

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

_MAX_ID = 2**31 - 1
"""Largest id an INTEGER primary key holds (a larger one would overflow the SQL driver)."""


@router.get(
    "/performance",
    summary="Online accuracy per model version (and scene) next to its offline accuracy",
    response_model=PerformanceResponse,
    responses=error_responses(422, 503),
)
async def performance(
    monitor: MonitorDep,
    offline: OfflineDep,
    window: Annotated[
        str, Query(description="Feedback window, e.g. 15m, 1h, 7d.", max_length=32)
    ] = "1h",
    by: Annotated[
        str | None, Query(description="`scene`: a row per scene pseudonym too.", max_length=32)
    ] = None,
) -> Response:
    """Per model version and variant (and scene with ``by=scene``): ``n`` scored feedbacks,
    mean ``ade``, ``fde`` and ``miss_rate`` in the window, and the ``test_ade`` / ``test_fde``
    logged at training (``null`` when unknown). 422 for any other ``by``."""
    span = parse_duration(window, field="window")
    group = grouping(by)
    rows = await anyio.to_thread.run_sync(lambda: monitor.performance(span, by=group))
    out = []
    for row in rows:
        found = await offline.get(row["model_version"])
        out.append({**row, "test_ade": found.get("test_ade"), "test_fde": found.get("test_fde")})
    return OrjsonResponse({"window": window, "window_s": span.total_seconds(), "versions": out})


@router.get(
    "/drift", summary="Stored drift reports, newest first", responses=error_responses(422, 503)
)
async def drift_reports(
    monitor: MonitorDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Most reports returned.")] = 50,
) -> Response:
    reports = await store_call(lambda: list_reports(monitor.store, limit=limit))
    return OrjsonResponse({"reports": reports})


@router.post(
    "/drift/run",
    summary="Run drift detection now on recent served inputs",
    responses=error_responses(404, 422, 503),
)
async def run_drift(
    jobs: JobsDep,
    monitor: MonitorDep,
    settings: SettingsDep,
    window: Annotated[
        int | None,
        Query(ge=10, le=100_000, description="Most recent served inputs (default: settings)."),
    ] = None,
    scene: Annotated[
        str | None, Query(max_length=128, description="Only this scene_id, vs its first inputs.")
    ] = None,
) -> Response:
    """Compares recent served inputs with the default model's reference profile (with
    ``scene``: that scene's latest inputs with its own first ones); stores the report, applies
    the persistence alert and logs to MLflow. 422 when too few inputs."""
    if scene is None:
        return OrjsonResponse(await jobs.run_drift(window=window))
    key = monitor.pseudonymise(scene, namespace="scene")
    run = partial(run_scene_drift, settings, monitor.store, scene_key=key, window=window)
    return OrjsonResponse(await store_call(lambda: run(alerts=monitor.alerts, log_to_mlflow=True)))


@router.get(
    "/drift/{report_id}/report",
    summary="The HTML report of one drift run",
    response_class=FileResponse,
    responses=error_responses(404, 422, 503),
)
async def drift_report_html(
    report_id: Annotated[int, Path(ge=1, le=_MAX_ID, description="Drift run id.")],
    monitor: MonitorDep,
    settings: SettingsDep,
) -> Response:
    report = await store_call(lambda: get_report(monitor.store, report_id))
    path = pathlib.Path(report["report_path"] or "").resolve()
    root = (settings.home / "drift").resolve()
    if not path.is_relative_to(root) or not path.is_file():  # only our own report files
        raise NotFoundError(
            f"the HTML report of drift run {report_id} is not available on this host",
            details=[{"loc": ["path", "report_id"], "msg": "report file missing"}],
        )
    return FileResponse(path, media_type="text/html")


@router.get(
    "/alerts", summary="Alerts, most recently seen first", responses=error_responses(422, 503)
)
async def alerts(
    monitor: MonitorDep,
    status: Annotated[
        Literal["firing", "resolved"] | None, Query(description="Only alerts in this state.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    rows = await store_call(lambda: monitor.alerts.list(status=status, limit=limit))
    return OrjsonResponse({"alerts": rows})

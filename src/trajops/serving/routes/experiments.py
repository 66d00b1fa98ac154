"""HTTP routes of A/B experiments (``admin`` scope): create, list, status, evaluate, end.

Thin: a schema in, one controller call in a worker thread (store and registry I/O), JSON out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from trajops.experiments import Arm, ExperimentSpec, Guardrails
from trajops.experiments.runtime import ExperimentRuntime
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


async def get_runtime(request: Request) -> ExperimentRuntime:
    runtime: ExperimentRuntime = request.app.state.experiments
    return runtime


RuntimeDep = Annotated[ExperimentRuntime, Depends(get_runtime)]
T = TypeVar("T")


class ArmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Arm name; the first arm is the control.", examples=["control"])
    model: str = Field(description="Registry alias or version it serves.", examples=["champion"])
    weight: float = Field(default=50.0, ge=0, description="Traffic weight (split mode).")


class GuardrailsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p99_latency_ms: float = Field(default=250.0, gt=0)
    error_rate: float = Field(default=0.02, ge=0, le=1)
    invalid_rate: float = Field(default=0.01, ge=0, le=1)
    min_requests: int = Field(default=50, ge=1)


class CreateExperiment(BaseModel):
    """A new experiment; see ``docs/ab-testing.md`` for every field's effect."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    arms: list[ArmBody] = Field(min_length=2)
    mode: Literal["split", "shadow"] = "split"
    unit: Literal["agent", "client", "scene"] = "agent"
    metric: Literal["ade", "fde"] = "ade"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    min_samples: int = Field(default=100, ge=2)
    max_samples: int = Field(default=20_000, ge=2)
    max_duration_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    tau: float = Field(default=0.1, gt=0)
    auto_promote: bool = False
    guardrails: GuardrailsBody = Field(default_factory=GuardrailsBody)

    def to_spec(self) -> ExperimentSpec:
        data: dict[str, Any] = self.model_dump(exclude={"arms", "guardrails"})
        return ExperimentSpec(
            arms=tuple(Arm(a.name, a.model, a.weight) for a in self.arms),
            guardrails=Guardrails(**self.guardrails.model_dump()),
            **data,
        )


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str | None = Field(default=None, description="Challenger arm (default: the first).")
    force: bool = Field(default=False, description="Bypass failed gate checks (recorded).")


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


async def _change(runtime: ExperimentRuntime, action: Callable[[], T]) -> T:
    """Run a state-changing controller call off the event loop, then refresh this replica's
    router in the same thread hop so it routes by the new state at once."""

    def run() -> T:
        result = action()
        runtime.router.refresh()
        return result

    return await anyio.to_thread.run_sync(run)


@router.post(
    "",
    status_code=201,
    summary="Start an experiment",
    responses=error_responses(404, 409, 422, 503),
)
async def create(body: CreateExperiment, runtime: RuntimeDep) -> Response:
    spec = body.to_spec()  # ValidationError (422) before any I/O
    record = await _change(runtime, lambda: runtime.controller().create(spec))
    return OrjsonResponse(record.to_dict(), status_code=201)


@router.get("", summary="Experiments, newest first")
async def list_experiments(runtime: RuntimeDep, status: str | None = None) -> Response:
    records = await anyio.to_thread.run_sync(lambda: runtime.repo.list(status=status))
    return OrjsonResponse([r.to_dict() for r in records])


@router.get(
    "/{experiment_id}",
    summary="Arms with counts and metrics, tests, verdict, SRM p-value",
    responses=error_responses(404, 503),
)
async def status(experiment_id: str, runtime: RuntimeDep) -> Response:
    st = await anyio.to_thread.run_sync(runtime.controller().status, experiment_id)
    return OrjsonResponse(st.to_dict())


@router.post(
    "/{experiment_id}/evaluate",
    summary="Decide now: roll back, promote (if allowed) or stop",
    responses=error_responses(404, 409, 503),
)
async def evaluate(experiment_id: str, runtime: RuntimeDep) -> Response:
    st = await _change(runtime, lambda: runtime.controller().evaluate(experiment_id))
    return OrjsonResponse(st.to_dict())


@router.post(
    "/{experiment_id}/stop",
    summary="Stop routing to the challengers",
    responses=error_responses(404, 409, 503),
)
async def stop(experiment_id: str, runtime: RuntimeDep, body: ReasonBody | None = None) -> Response:
    reason = (body.reason if body else "") or "stopped by API"
    record = await _change(runtime, lambda: runtime.controller().stop(experiment_id, reason=reason))
    return OrjsonResponse(record.to_dict())


@router.post(
    "/{experiment_id}/rollback",
    summary="Stop, all traffic to the control, alert, restore moved aliases",
    responses=error_responses(404, 409, 503),
)
async def rollback(
    experiment_id: str, runtime: RuntimeDep, body: ReasonBody | None = None
) -> Response:
    reason = (body.reason if body else "") or "rolled back by API"
    record = await _change(
        runtime, lambda: runtime.controller().rollback(experiment_id, reason=reason)
    )
    return OrjsonResponse(record.to_dict())


@router.post(
    "/{experiment_id}/promote",
    summary="Promote a challenger to champion through the registry's gate",
    responses=error_responses(404, 409, 503),
)
async def promote(
    experiment_id: str, runtime: RuntimeDep, body: PromoteBody | None = None
) -> Response:
    body = body or PromoteBody()
    record = await _change(
        runtime, lambda: runtime.controller().promote(experiment_id, arm=body.arm, force=body.force)
    )
    return OrjsonResponse(record.to_dict())

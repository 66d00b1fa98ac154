"""BentoML service of ``bench/serve_scene.py``: trajops' registered neural forecaster behind
BentoML adaptive batching.

Started by the bench as ``bentoml serve bentoml_scene_service:SceneForecaster --working-dir
bench --arg workers=N ...`` (BentoML 1.4, the ``bench-bentoml`` extra), with the registry in
``MLFLOW_TRACKING_URI``. The model is the registered version loaded the way trajops' own pool
loads it (:func:`trajops.prediction.loading.load_version`: the forecaster read from the
pyfunc's artifacts, smoke-tested), so both servers hold the same weights.

``POST /v1/predict`` takes a JSON list of scenes, each a trajops ``/v1/predict`` body
(``{"agents": [{"agent_id": ..., "positions": [[x, y] * 8]}]}``, agents validated by trajops'
own ``AgentIn``); the bench sends one scene per request, ``[<trajops body>]``. The API is
batchable: BentoML's dispatcher concatenates the lists of concurrent requests, so one scene is
one batch item and scenes never mix. A batch runs :meth:`LoadedModel.predict_scenes`, the call
trajops' micro-batcher makes: each scene's neighbours from its own agents, then every agent of
the batch through one forward pass. Positions are rounded to millimetres first, as trajops
does before predicting (:func:`trajops.prediction.cache.normalise_obs`).

Answer: a list with one ``{"predictions": [{"agent_id": ..., "positions": [[x, y] * 12]}]}``
per scene, agents in request order.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bentoml
import numpy as np
from pydantic import BaseModel, Field

from trajops.serving.schemas import AgentIn


class SceneArgs(BaseModel):
    """``bentoml serve --arg KEY=VALUE`` arguments of the service."""

    workers: int = 1
    model: str = "trajectory-forecaster"
    version: str = "1"
    max_batch_size: int = 100
    """Scenes (requests) in one batch: 100 scenes of 20 agents is about trajops' own limit of
    2,048 agents per forward pass."""
    max_latency_ms: int = 10_000
    """BentoML's latency budget: a request its dispatcher expects to miss it is refused (503).
    Well above wrk's 2 s timeout, so the dispatcher does not shed load that trajops would
    serve (trajops has no latency budget, only a queue bound)."""
    access_log: bool = False
    """BentoML's access log line per request (on as shipped; off by default here, as
    ``trajops serve`` runs uvicorn without an access log)."""


ARGS = bentoml.use_arguments(SceneArgs)


class Scene(BaseModel):
    """One trajops ``/v1/predict`` body (the agents of one scene)."""

    agents: list[AgentIn] = Field(min_length=1)


class AgentForecast(BaseModel):
    agent_id: str | int
    positions: list[list[float]]


class SceneForecast(BaseModel):
    predictions: list[AgentForecast]


@bentoml.service(
    name="trajops_scene",
    workers=ARGS.workers,
    traffic={"timeout": 60},
    logging={"access": {"enabled": ARGS.access_log}},
)
class SceneForecaster:
    def __init__(self) -> None:
        from mlflow import MlflowClient

        from trajops.prediction.loading import load_version

        uri = os.environ["MLFLOW_TRACKING_URI"]
        self._dir = tempfile.TemporaryDirectory(prefix="trajops-bentoml-model-")
        self.model = load_version(
            MlflowClient(uri),
            model_name=ARGS.model,
            version=ARGS.version,
            tracking_uri=uri,
            dst=Path(self._dir.name),
            smoke_agents=3,
        )

    @bentoml.api(
        route="/v1/predict",
        batchable=True,
        max_batch_size=ARGS.max_batch_size,
        max_latency_ms=ARGS.max_latency_ms,
    )
    def predict(self, scenes: list[Scene], /) -> list[SceneForecast]:
        """Forecast a batch of scenes (the scenes of every request in the batch)."""
        from trajops.prediction.cache import normalise_obs

        obs = [
            normalise_obs(np.array([a.positions for a in s.agents], dtype=np.float64))
            for s in scenes
        ]  # (N_i, T_obs, 2) each
        outs = self.model.predict_scenes(obs)  # (N_i, T_pred, 2) each
        return [
            SceneForecast(
                predictions=[
                    AgentForecast(agent_id=a.agent_id, positions=out[i].tolist())
                    for i, a in enumerate(s.agents)
                ]
            )
            for s, out in zip(scenes, outs, strict=True)
        ]

"""Loading one registry version as a smoke-tested :class:`LoadedModel` (blocking code).

Everything here blocks (registry queries, artifact downloads, loading); the pool calls it
from its own threads, never on the event loop. The forecaster comes from the model contract's
one loader, :func:`trajops.models.pyfunc.load_forecaster`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trajops import STEP_S, T_OBS, T_PRED
from trajops.data.windows import neighbours_from_batch
from trajops.errors import ModelLoadError
from trajops.models.base import Forecaster


@dataclass(frozen=True)
class PoolConfig:
    """Tuning of the model pool."""

    tracked_aliases: tuple[str, ...] = ("champion", "challenger")
    """Aliases polled from the start (others are tracked once a request names them)."""
    max_versions: int = 4
    """Versions kept in memory; the oldest unreferenced ones are dropped beyond this."""
    smoke_agents: int = 3
    registry_timeout_s: float = 5.0
    """Longest wait for one registry call (poll, readiness probe); MLflow's own HTTP retries
    can take minutes, so the pool stops waiting and reports the registry as unreachable."""
    load_timeout_s: float = 300.0
    """Longest wait for downloading, loading and smoke-testing one version."""
    registry_threads: int = 2
    """Threads for registry calls and loads, apart from the prediction threads."""
    negative_ttl_s: float = 5.0
    """How long an unknown reference is remembered as unknown (bounds registry lookups)."""


@dataclass(frozen=True)
class LoadedModel:
    """One registry version, loaded and smoke-tested.

    Attributes:
        agent_seconds: measured seconds per agent and sample of a small prediction
            (neighbours included); the service uses it to decide between the event loop and a
            worker thread.
        path: local copy of the version's artifacts (removed when the version is evicted).
    """

    name: str
    version: str
    run_id: str | None
    forecaster: Forecaster
    loaded_at: datetime
    load_seconds: float
    agent_seconds: float
    path: Path

    def predict(self, obs: np.ndarray, *, num_samples: int, seed: int) -> np.ndarray:
        """Forecast the agents of one scene.

        Args:
            obs: ``(N, T_obs, 2)`` observed positions.
            num_samples: K samples per agent.
            seed: seed for sampling models.

        Returns:
            ``(N, T_pred, 2)`` when K = 1, else ``(N, K, T_pred, 2)``, float32.

        Raises:
            ModelLoadError: the model returned the wrong shape or non-finite values.
        """
        neighbours = self._neighbours([obs])
        out = self.forecaster.predict(
            obs, neighbours=neighbours, num_samples=num_samples, seed=seed
        )
        expected = (len(obs), T_PRED, 2) if num_samples == 1 else (len(obs), num_samples, T_PRED, 2)
        return self._checked(out, expected)

    @property
    def batchable(self) -> bool:
        """Whether concurrent requests should share one forward pass (a large fixed cost per
        call: the neural forecaster)."""
        return bool(getattr(self.forecaster, "batchable", False))

    def predict_scenes(self, scenes: list[np.ndarray]) -> list[np.ndarray]:
        """Deterministic forecasts (K = 1) of several scenes in one call of the forecaster.

        Each scene's neighbours come from its own agents only; the agents of every scene then
        go through the forecaster together.

        Args:
            scenes: ``(N_i, T_obs, 2)`` observed positions, one array per scene.

        Returns:
            ``(N_i, T_pred, 2)`` float32 forecasts, one per scene, in order.
        """
        obs = np.concatenate(scenes) if len(scenes) > 1 else scenes[0]  # (sum N_i, T_obs, 2)
        out = self.forecaster.predict(
            obs, neighbours=self._neighbours(scenes), num_samples=1, seed=0
        )
        out = self._checked(out, (len(obs), T_PRED, 2))
        return np.split(out, np.cumsum([len(s) for s in scenes])[:-1])

    def _neighbours(self, scenes: list[np.ndarray]) -> np.ndarray | None:
        """``(sum N_i, K_nbr, T_obs, 2)`` neighbours, each scene's from its own agents."""
        if not getattr(self.forecaster, "scene_aware", True):
            return None
        slots = int(getattr(self.forecaster, "neighbour_slots", 16))  # what the model reads
        parts = [neighbours_from_batch(s.astype(np.float32), slots) for s in scenes]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _checked(self, out: Any, expected: tuple[int, ...]) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.shape != expected or not np.isfinite(out).all():
            raise ModelLoadError(
                f"model version {self.version} returned {out.shape} "
                f"(finite: {bool(np.isfinite(out).all())}), expected {expected}"
            )
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for ``GET /v1/models``."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "forecaster": getattr(self.forecaster, "name", type(self.forecaster).__name__),
            "loaded_at": self.loaded_at.isoformat(),
            "load_seconds": round(self.load_seconds, 4),
        }


def is_not_found(exc: BaseException) -> bool:
    """Whether an MLflow error means "no such model, version or alias"."""
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _rest_creds(client: Any) -> Any | None:
    """Host credentials of a REST registry (``mlflow server``), or None for a local store."""
    try:
        store = client._get_registry_client().store
    except Exception:
        return None
    get_creds = getattr(store, "get_host_creds", None)
    return get_creds() if callable(get_creds) else None


def _rest_get(creds: Any, endpoint: str, *, params: dict[str, Any], timeout_s: float) -> Any:
    """One GET without MLflow's retries: its default back-off keeps a call alive for minutes
    after the server died, and calls queued behind it would keep polling stalled long after
    the server is back. The pool retries on its own schedule instead."""
    from mlflow.utils.rest_utils import http_request

    return http_request(creds, endpoint, "GET", max_retries=0, timeout=timeout_s, params=params)


def fetch_aliases(client: Any, *, model_name: str, timeout_s: float) -> dict[str, str]:
    """``{alias: version}`` of a registered model (empty when the model is not registered).

    Args:
        client: an ``MlflowClient`` on the registry.
        model_name: registered model name.
        timeout_s: socket timeout of a REST registry call (no retries).

    Raises:
        Exception: the registry is unreachable or answered with an error.
    """
    creds = _rest_creds(client)
    if creds is None:
        try:
            rm = client.get_registered_model(model_name)
        except Exception as exc:
            if is_not_found(exc):
                return {}
            raise
        return {str(k): str(v) for k, v in (rm.aliases or {}).items()}
    resp = _rest_get(
        creds,
        "/api/2.0/mlflow/registered-models/get",
        params={"name": model_name},
        timeout_s=timeout_s,
    )
    body = resp.json() if resp.content else {}
    if resp.status_code == 404 or body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
        return {}
    resp.raise_for_status()
    aliases = body.get("registered_model", {}).get("aliases", [])
    return {str(a["alias"]): str(a["version"]) for a in aliases}


def probe_registry(client: Any, *, timeout_s: float) -> None:
    """One cheap registry call (no retries on a REST registry); raises when it fails."""
    creds = _rest_creds(client)
    if creds is None:
        client.search_registered_models(max_results=1)
        return
    resp = _rest_get(
        creds,
        "/api/2.0/mlflow/registered-models/search",
        params={"max_results": 1},
        timeout_s=timeout_s,
    )
    resp.raise_for_status()


def smoke_obs(n: int) -> np.ndarray:
    """``(n, T_obs, 2)`` walkers fanning out in every direction at 1.3 m/s."""
    t = np.arange(T_OBS, dtype=np.float64) * STEP_S  # (T_obs,)
    heading = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)  # (n,)
    vel = 1.3 * np.stack([np.cos(heading), np.sin(heading)], axis=-1)  # (n, 2)
    start = np.stack([np.arange(n) * 1.5, np.zeros(n)], axis=-1)  # (n, 2)
    return start[:, None] + vel[:, None] * t[None, :, None]  # (n, T_obs, 2)


def smoke_test(model: LoadedModel, *, agents: int = 3) -> float:
    """Finite output of the right shape on a fixed input (1 and 2 samples).

    Returns:
        The best of three timings of a one-sample prediction, per agent, in seconds.

    Raises:
        ModelLoadError: wrong shape or non-finite output.
    """
    obs = smoke_obs(agents)  # (n, T_obs, 2)
    model.predict(obs, num_samples=2, seed=0)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(obs, num_samples=1, seed=0)
        best = min(best, time.perf_counter() - t0)
    return best / agents


def load_version(
    client: Any, *, model_name: str, version: str, tracking_uri: str, dst: Path, smoke_agents: int
) -> LoadedModel:
    """Download, load and smoke-test one registered version.

    Args:
        client: an ``MlflowClient`` on the registry.
        model_name: registered model name.
        version: version number.
        tracking_uri: where artifacts are resolved (``mlflow-artifacts:`` URIs need it).
        dst: empty local folder for the artifacts.
        smoke_agents: agents in the smoke test.

    Raises:
        ModelLoadError: not a trajops forecaster pyfunc, or the smoke test failed.
        MlflowException: the registry does not know the version (see :func:`is_not_found`).
    """
    from trajops.models.pyfunc import load_forecaster  # imports mlflow: only when loading

    t0 = time.perf_counter()
    mv = client.get_model_version(model_name, version)
    uri = client.get_model_version_download_uri(model_name, version)
    forecaster = load_forecaster(uri, dst=dst, tracking_uri=tracking_uri)
    model = LoadedModel(
        name=model_name,
        version=str(version),
        run_id=mv.run_id,
        forecaster=forecaster,
        loaded_at=datetime.now(UTC),
        load_seconds=0.0,
        agent_seconds=0.0,
        path=dst,
    )
    agent_seconds = smoke_test(model, agents=smoke_agents)
    return replace(
        model,
        loaded_at=datetime.now(UTC),
        load_seconds=time.perf_counter() - t0,
        agent_seconds=agent_seconds,
    )

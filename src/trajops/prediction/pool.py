"""ModelPool: registered pyfunc models held in memory, kept in step with registry aliases.

The pool maps references to loaded versions: an alias (``champion``) maps to a version through
the registry; a version maps to a :class:`LoadedModel`. A background task polls the registry
every ``poll_interval_s``; when an alias moved it loads the new version off the event loop,
smoke-tests it, and only then swaps the alias (one dict assignment on the event loop, so a
request sees either the old or the new model, and in-flight requests finish on the object they
already hold). A failed load keeps the last good model, counts a failure and is reported in
``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from trajops._refs import MAX_VERSION, canonical_ref
from trajops.errors import (
    ModelLoadError,
    ModelNotFoundError,
    ServiceUnavailable,
    TrajopsError,
)
from trajops.monitoring.metrics import ServingMetrics
from trajops.prediction.loading import (
    LoadedModel,
    PoolConfig,
    fetch_aliases,
    is_not_found,
    load_version,
    probe_registry,
)

__all__ = ["LoadedModel", "ModelPool", "PoolConfig"]

log = logging.getLogger(__name__)

ARTIFACTS_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
"""MLflow's switch of its "Downloading artifacts" progress bars (read at every download)."""

_T = TypeVar("_T")


@dataclass
class _AliasState:
    version: str | None = None
    error: str | None = None
    error_at: datetime | None = None


@dataclass
class _Unknown:
    until: float
    error: TrajopsError = field(repr=False)


class ModelPool:
    """Loaded model versions, their aliases and the registry poller."""

    def __init__(
        self,
        *,
        model_name: str,
        tracking_uri: str,
        registry_uri: str,
        default_ref: str,
        poll_interval_s: float,
        metrics: ServingMetrics,
        config: PoolConfig | None = None,
    ) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        default_ref = canonical_ref(default_ref)
        self.default_ref = default_ref
        self.poll_interval_s = poll_interval_s
        self.metrics = metrics
        self.config = config or PoolConfig()
        self._aliases: dict[str, _AliasState] = {
            a: _AliasState() for a in self.config.tracked_aliases
        }
        if not default_ref.isdigit():
            self._aliases.setdefault(default_ref, _AliasState())
        self._versions: dict[str, LoadedModel] = {}
        self._version_errors: dict[str, str] = {}
        self._unknown: dict[str, _Unknown] = {}
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._client: Any = None
        self._dir = Path(tempfile.mkdtemp(prefix="trajops-models-"))
        self._poller: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.registry_threads, thread_name_prefix="trajops-registry"
        )
        self.last_poll_at: datetime | None = None
        self.last_poll_error: str | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self, *, poll: bool = True) -> None:
        """Connect to the registry, load what the aliases point at, start the poller.

        Failures are recorded, not raised: the service starts unready and the poller retries.
        """
        # MLflow draws a tqdm bar per model download on stderr: the server log is for events.
        os.environ.setdefault(ARTIFACTS_PROGRESS_BAR, "false")
        try:
            await self.refresh()
            if self.default_ref.isdigit():
                await self.acquire(self.default_ref)
        except TrajopsError as exc:
            log.warning("model pool start: %s", exc.message)
        if poll:
            self._poller = asyncio.create_task(self._poll_forever(), name="trajops-model-poller")

    async def stop(self) -> None:
        """Stop the poller and drop every loaded model."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self._versions.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _blocking(self, fn: Callable[[], _T], *, timeout_s: float) -> _T:
        """Run a blocking registry call on the pool's own threads, waiting at most
        ``timeout_s`` (the thread may run on; the caller gets ``TimeoutError``)."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        return await asyncio.wait_for(future, timeout_s)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh()
            except ServiceUnavailable as exc:  # expected while the registry is down
                log.warning("model pool poll failed: %s", exc.message)
            except Exception:  # the poller must outlive any single failure
                log.exception("model pool poll failed")

    # --- registry access (blocking; always called through _blocking) ----------------------
    def _registry(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(self.tracking_uri, self.registry_uri)
        return self._client

    def _fetch_aliases(self) -> dict[str, str]:
        return fetch_aliases(
            self._registry(),
            model_name=self.model_name,
            timeout_s=self.config.registry_timeout_s,
        )

    def _load_blocking(self, version: str) -> LoadedModel:
        return load_version(
            self._registry(),
            model_name=self.model_name,
            version=version,
            tracking_uri=self.tracking_uri,
            dst=self._dir / f"v{version}-{time.monotonic_ns()}",
            smoke_agents=self.config.smoke_agents,
        )

    # --- loading ---------------------------------------------------------------------------
    async def _ensure_version(self, version: str) -> LoadedModel:
        """The loaded version, loading (off the event loop) and smoke-testing it if needed."""
        if (model := self._versions.get(version)) is not None:
            return model
        lock = self._load_locks.setdefault(version, asyncio.Lock())
        async with lock:
            if (model := self._versions.get(version)) is not None:
                return model
            t0 = time.perf_counter()
            try:
                model = await self._blocking(
                    lambda: self._load_blocking(version), timeout_s=self.config.load_timeout_s
                )
            except Exception as exc:
                if is_not_found(exc):  # a caller's typo, not a failed load
                    raise ModelNotFoundError(
                        f"model {self.model_name!r} has no version {version}",
                        details=[{"loc": ["body", "model"], "msg": "unknown version"}],
                    ) from None
                self.metrics.model_loads.labels("failure").inc()
                message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                if version not in self._version_errors and len(self._version_errors) >= 16:
                    self._version_errors.pop(next(iter(self._version_errors)))  # bounded
                self._version_errors[version] = message
                log.error("loading %s version %s failed: %s", self.model_name, version, message)
                raise ModelLoadError(
                    f"cannot load {self.model_name} version {version}: {message}"
                ) from None
            self.metrics.model_loads.labels("success").inc()
            self.metrics.model_load_seconds.observe(time.perf_counter() - t0)
            self.metrics.model_loaded.labels(version).set(1)
            self._version_errors.pop(version, None)
            self._versions[version] = model
            self._evict()
            log.info("loaded %s version %s in %.2fs", self.model_name, version, model.load_seconds)
            return model

    def _evict(self) -> None:
        keep = {s.version for s in self._aliases.values() if s.version}
        if self.default_ref.isdigit():
            keep.add(self.default_ref)
        spare = sorted(
            (m for v, m in self._versions.items() if v not in keep), key=lambda m: m.loaded_at
        )
        while len(self._versions) > self.config.max_versions and spare:
            old = spare.pop(0)
            del self._versions[old.version]
            self.metrics.model_loaded.remove(old.version)
            shutil.rmtree(old.path, ignore_errors=True)

    async def refresh(self) -> dict[str, Any]:
        """One poll cycle: read aliases, load and swap in every moved alias. Returns
        :meth:`snapshot`."""
        try:
            registry = await self._blocking(
                self._fetch_aliases, timeout_s=self.config.registry_timeout_s
            )
        except Exception as exc:
            self.last_poll_error = f"registry unreachable: {type(exc).__name__}: {exc}"
            raise ServiceUnavailable(self.last_poll_error) from None
        self.last_poll_at = datetime.now(UTC)
        self.last_poll_error = None
        for alias, state in list(self._aliases.items()):
            target = registry.get(alias)
            if target is None:
                if state.version is not None:
                    state.error = "alias no longer set in the registry; serving the last version"
                    state.error_at = datetime.now(UTC)
                continue
            if target == state.version and target in self._versions:
                continue
            try:
                await self._ensure_version(target)
            except TrajopsError as exc:
                state.error, state.error_at = exc.message, datetime.now(UTC)
                continue
            moved = state.version is not None
            state.version, state.error, state.error_at = target, None, None  # the atomic swap
            if moved:
                self.metrics.model_swaps.labels(alias).inc()
                log.info("alias %s now serves version %s", alias, target)
        self._evict()
        return self.snapshot()

    # --- request path ----------------------------------------------------------------------
    def resolve(self, ref: str | None) -> tuple[LoadedModel, str | None] | None:
        """The loaded model for ``ref`` (default when ``None``) and the alias used, or ``None``
        when it is not loaded yet. Never blocks."""
        ref = canonical_ref(ref) if ref else self.default_ref
        if ref.isdigit():
            model = self._versions.get(ref)
            return None if model is None else (model, None)
        state = self._aliases.get(ref)
        if state is None or state.version is None:
            return None
        model = self._versions.get(state.version)
        return None if model is None else (model, ref)

    def default_version(self) -> str | None:
        """The version serving unrouted traffic, or ``None`` while none is loaded."""
        hit = self.resolve(None)
        return None if hit is None else hit[0].version

    async def acquire(self, ref: str | None) -> tuple[LoadedModel, str | None]:
        """Like :meth:`resolve`, loading an unknown alias or version on demand.

        Raises:
            ModelNotFoundError: the registry has no such alias or version.
            ServiceUnavailable: the registry is unreachable or the model cannot be loaded.
        """
        hit = self.resolve(ref)
        if hit is not None:
            return hit
        if ref is not None:
            ref = canonical_ref(ref)
            if ref.isdigit() and int(ref) > MAX_VERSION:
                raise ModelNotFoundError(
                    f"model {self.model_name!r} has no version {ref}",
                    details=[{"loc": ["body", "model"], "msg": "unknown version"}],
                )
        if ref is None:
            try:
                return await self.acquire(self.default_ref)
            except ModelNotFoundError as exc:
                raise ServiceUnavailable(
                    f"no model serves the default reference {self.default_ref!r}: {exc.message}"
                ) from None
        unknown = self._unknown.get(ref)
        if unknown is not None and unknown.until > time.monotonic():
            raise unknown.error
        try:
            if ref.isdigit():
                return await self._ensure_version(ref), None
            state = self._aliases.get(ref)
            if state is not None and state.error and state.version is None:
                raise ModelLoadError(f"no model loaded for {ref!r}: {state.error}")
            aliases = await self._aliases_now()
            if ref not in aliases:
                raise ModelNotFoundError(
                    f"model {self.model_name!r} has no alias {ref!r}",
                    details=[{"loc": ["body", "model"], "msg": "unknown alias"}],
                )
            model = await self._ensure_version(aliases[ref])
        except ModelNotFoundError as exc:
            now = time.monotonic()
            if len(self._unknown) >= 1024:  # refs come from callers: keep the memory bounded
                self._unknown = {k: u for k, u in self._unknown.items() if u.until > now}
            if len(self._unknown) < 1024:
                self._unknown[ref] = _Unknown(now + self.config.negative_ttl_s, exc)
            raise
        state = self._aliases.setdefault(ref, _AliasState())
        state.version, state.error = model.version, None
        return model, ref

    async def _aliases_now(self) -> dict[str, str]:
        try:
            return await self._blocking(
                self._fetch_aliases, timeout_s=self.config.registry_timeout_s
            )
        except Exception as exc:
            raise ServiceUnavailable(f"model registry unreachable: {type(exc).__name__}") from None

    async def set_default(self, ref: str) -> dict[str, Any]:
        """Serve unrouted traffic from ``ref`` (loaded first, so a bad ref changes nothing)."""
        model, alias = await self.acquire(ref)
        self.default_ref = alias or model.version
        return self.snapshot()

    # --- status ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Loaded versions, aliases and load times (``GET /v1/models``)."""
        aliases = {a: s.version for a, s in self._aliases.items()}
        return {
            "name": self.model_name,
            "default": self.default_ref,
            "aliases": aliases,
            "versions": [
                {**m.describe(), "aliases": sorted(a for a, v in aliases.items() if v == m.version)}
                for m in sorted(self._versions.values(), key=lambda m: int(m.version))
            ],
            "errors": {
                **{a: s.error for a, s in self._aliases.items() if s.error},
                **{f"version {v}": e for v, e in self._version_errors.items()},
            },
            "poll_interval_s": self.poll_interval_s,
            "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
        }

    def model_status(self) -> dict[str, Any]:
        """Readiness of the default model (``ok`` when it is loaded), for the public
        ``/readyz``: how many references fail to load, not why (``GET /v1/models`` says)."""
        hit = self.resolve(None)
        out: dict[str, Any] = {"ok": hit is not None, "default": self.default_ref}
        if hit is not None:
            out["version"] = hit[0].version
        failing = len(self.snapshot()["errors"])
        if failing:
            out["failing"] = failing
        return out

    async def registry_status(self) -> dict[str, Any]:
        """Whether the registry answers within ``registry_timeout_s``."""
        t0 = time.perf_counter()
        try:
            await self._blocking(
                lambda: probe_registry(self._registry(), timeout_s=self.config.registry_timeout_s),
                timeout_s=self.config.registry_timeout_s,
            )
        except Exception as exc:
            log.info("registry readiness probe failed: %s: %s", type(exc).__name__, exc)
            return {  # public: the exception's type only, never its text
                "ok": False,
                "status": "degraded",
                "error": type(exc).__name__,
                "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
            }
        latency_ms = round((time.perf_counter() - t0) * 1e3, 2)
        return {"ok": True, "status": "ok", "latency_ms": latency_ms}

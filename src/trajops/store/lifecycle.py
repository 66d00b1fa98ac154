"""Running against an operational store that may be down: migrations in the background,
readiness, and blocking calls turned into clean errors.

``Store(url)`` runs the Alembic migrations in its constructor, so a database that is down at
startup would crash the service. A serving process builds the store without migrating
(:meth:`~trajops.monitoring.service.Monitor.open`, whose log writer starts at once), and
:class:`StoreMigrations` migrates in the background, retrying with back-off until the database
answers. Until then every logged row is spooled by the writer and replayed later: predictions
keep flowing, and ``/readyz`` reports the store as degraded (not required).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from trajops.errors import ServiceUnavailable, TrajopsError
from trajops.store.db import Store, migrate

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class MigrationConfig:
    """Back-off of the background migration."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    status_timeout_s: float = 3.0
    """Longest wait for the store's readiness probe."""


class StoreMigrations:
    """Migrates the store now, or in the background until it can.

    Attributes:
        done: the schema is at head.
        last_error: why the last attempt failed.
    """

    def __init__(self, store: Store, config: MigrationConfig | None = None) -> None:
        self.store = store
        self.config = config or MigrationConfig()
        self.done = False
        self.last_error: str | None = None
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None

    async def _attempt(self) -> bool:
        self.attempts += 1
        try:
            await anyio.to_thread.run_sync(migrate, self.store.engine)
        except TrajopsError as exc:
            self.last_error = exc.message[:300]
            return False
        self.done, self.last_error = True, None
        return True

    async def start(self) -> None:
        """One attempt now; on failure keep retrying in a background task."""
        if await self._attempt():
            return
        log.warning(
            "operational store not migrated, retrying in the background: %s", self.last_error
        )
        self._task = asyncio.create_task(self._retry(), name="trajops-store-migrations")

    async def _retry(self) -> None:
        delay = self.config.first_delay_s
        while True:
            await asyncio.sleep(delay)
            if await self._attempt():
                break
            delay = min(delay * 2, self.config.max_delay_s)
        log.info("operational store migrated after %d attempts", self.attempts)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def store_status(
    health_probe: Callable[[], dict[str, Any]], migrations: StoreMigrations
) -> dict[str, Any]:
    """The store's readiness entry (``ok`` when reachable and migrated); never raises.

    Args:
        health_probe: blocking probe of the store and the log writer
            (:meth:`~trajops.monitoring.service.Monitor.health`).
        migrations: the background migration.
    """
    try:
        with anyio.fail_after(migrations.config.status_timeout_s):
            health = await anyio.to_thread.run_sync(health_probe, abandon_on_cancel=True)
    except TimeoutError:
        health = {"status": "degraded", "reachable": False, "error": "probe timed out"}
    out = {**health, "migrated": migrations.done}  # public: no error text
    out["ok"] = bool(health.get("reachable")) and migrations.done
    out["status"] = "ok" if out["ok"] else "degraded"
    return out


async def store_call(fn: Callable[[], _T]) -> _T:
    """Run a blocking store call in a worker thread; an unreachable store becomes a 503."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"operational store unreachable: {exc.__class__.__name__}"
        ) from None

"""Everything one dashboard process reads from: the service's API, the store, the registry.

Built once per process from settings (the Streamlit app keeps it as a cached resource); the
store and the registry are opened on first use, so a page that only needs the API works while
they are unreachable, and every failure is a :class:`~trajops.errors.TrajopsError` whose
message says what to fix. No Streamlit here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from trajops.dashboard.client import ServiceClient
from trajops.errors import ServiceUnavailable
from trajops.settings import Settings
from trajops.store.db import Store

if TYPE_CHECKING:  # MLflow loads lazily
    from trajops.registry.adapter import Registry

T = TypeVar("T")


@dataclass(frozen=True)
class DashboardConfig:
    """The settings the dashboard uses, hashable (a cache key for the Streamlit resource)."""

    api_url: str
    api_key: str | None = field(repr=False)  # never in a log line or an error page
    database_url: str
    tracking_uri: str
    registry_uri: str
    model_name: str
    refresh_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardConfig:
        key = settings.dashboard_api_key
        return cls(
            api_url=settings.dashboard_api_url,
            api_key=key.get_secret_value() if key is not None else None,
            database_url=settings.resolved_database_url,
            tracking_uri=settings.resolved_tracking_uri,
            registry_uri=settings.resolved_registry_uri,
            model_name=settings.model_name,
            refresh_s=settings.dashboard_refresh_s,
            timeout_s=settings.dashboard_timeout_s,
        )


class DashboardContext:
    """The service client, and the store and registry opened on first use.

    Args:
        config: where everything is.
    """

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.client = ServiceClient(
            config.api_url, api_key=config.api_key, timeout_s=config.timeout_s
        )
        self._store: Store | None = None
        self._registry: Registry | None = None
        self._lock = threading.Lock()  # one context serves every browser session's thread

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardContext:
        return cls(DashboardConfig.from_settings(settings))

    def query(self, read: Callable[[Store], T]) -> T:
        """Run one read on the store; database errors become ``ServiceUnavailable``.

        The dashboard never migrates: it reads what the service created.
        """
        try:
            with self._lock:
                if self._store is None:
                    self._store = Store(self.config.database_url, run_migrations=False)
                store = self._store
            return read(store)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"operational store unreachable or not initialised "
                f"({exc.__class__.__name__}); check TRAJOPS_DATABASE_URL and that the "
                "service has started once"
            ) from None

    def registry(self) -> Registry:
        """The registry adapter (its calls raise ``TrackingUnavailable`` while it is down)."""
        with self._lock:
            if self._registry is None:
                from mlflow import MlflowClient

                from trajops.registry.adapter import Registry

                # Not Registry.from_settings: that sets MLflow's process-wide URIs.
                client = MlflowClient(self.config.tracking_uri, self.config.registry_uri)
                self._registry = Registry(
                    client, self.config.model_name, uri=self.config.registry_uri
                )
            return self._registry

    def close(self) -> None:
        self.client.close()
        if self._store is not None:
            self._store.dispose()

"""Everything one dashboard process reads from: the service's API, the store, the registry.

Built once per process from settings (the Streamlit app keeps it as a cached resource); the
store and the registry are opened on first use, so a page that only needs the API works while
they are unreachable, and every failure is a :class:`~trajops.errors.TrajopsError` whose
message says what to fix. No Streamlit here.
"""

from __future__ import annotations

import copy
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
    login: bool = True
    sso_url: str | None = None  # the service's single sign-on start, as browsers reach it
    mlflow_ui_url: str | None = None  # links into the MLflow UI

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
            login=settings.dashboard_login,
            mlflow_ui_url=settings.dashboard_mlflow_ui_url,
            sso_url=(
                settings.oidc_start_url
                or f"{settings.dashboard_api_url.rstrip('/')}/v1/auth/oidc/login"
            )
            if settings.oidc_enabled
            else None,
        )


class DashboardContext:
    """The service client, and the store and registry opened on first use.

    One context per process (with the configured key); :meth:`as_user` gives each signed-in
    person a context that acts through the API with their session and shares the rest.

    Args:
        config: where everything is.
    """

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.client = ServiceClient(
            config.api_url, api_key=config.api_key, timeout_s=config.timeout_s
        )
        self.user: str | None = None
        self.scopes: frozenset[str] | None = None  # None: sign-in off, the API decides
        self._root = self
        self._store: Store | None = None
        self._registry: Registry | None = None
        self._lock = threading.Lock()  # one context serves every browser session's thread

    def as_user(
        self, client: ServiceClient, *, user: str, scopes: frozenset[str]
    ) -> DashboardContext:
        """This context acting as a signed-in person (their client, user and scopes)."""
        other = copy.copy(self._root)
        other.client, other.user, other.scopes = client, user, scopes
        return other

    def can(self, scope: str) -> bool:
        """Whether the person may act with ``scope`` (``admin`` grants all, ``operate``
        grants ``read``); with sign-in off, the API decides at each call."""
        if self.scopes is None:
            return True
        return (
            scope in self.scopes
            or "admin" in self.scopes
            or (scope == "read" and "operate" in self.scopes)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardContext:
        return cls(DashboardConfig.from_settings(settings))

    def query(self, read: Callable[[Store], T]) -> T:
        """Run one read on the store; database errors become ``ServiceUnavailable``.

        The dashboard never migrates: it reads what the service created.
        """
        root = self._root
        try:
            with root._lock:
                if root._store is None:
                    root._store = Store(self.config.database_url, run_migrations=False)
                store = root._store
            return read(store)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"operational store unreachable or not initialised "
                f"({exc.__class__.__name__}); check TRAJOPS_DATABASE_URL and that the "
                "service has started once"
            ) from None

    def registry(self) -> Registry:
        """The registry adapter (its calls raise ``TrackingUnavailable`` while it is down)."""
        root = self._root
        with root._lock:
            if root._registry is None:
                from mlflow import MlflowClient

                from trajops.registry.adapter import Registry

                # Not Registry.from_settings: that sets MLflow's process-wide URIs.
                client = MlflowClient(self.config.tracking_uri, self.config.registry_uri)
                root._registry = Registry(
                    client, self.config.model_name, uri=self.config.registry_uri
                )
            return root._registry

    def close(self) -> None:
        self.client.close()
        if self._store is not None:
            self._store.dispose()

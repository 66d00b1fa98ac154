"""One replica under test: the app with the production path on (API keys, rate limits, audit,
prediction logging), served by uvicorn in a thread, in front of services the test owns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests._support.api_keys import issue_key
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings


def service_settings(home: Path, *, tracking_uri: str, **overrides: Any) -> Settings:
    """Settings of a replica under test: fast log flushes, a rate limit that never bites."""
    base: dict[str, Any] = {
        "home": home,
        "tracking_uri": tracking_uri,
        "rate_limit_per_s": 100_000,
        "rate_limit_burst": 100_000,
        "log_flush_interval_s": 0.1,
        "metrics_public": True,
        "alert_interval_s": 0,
    }
    return Settings(**{**base, **overrides})


@contextmanager
def serving(
    settings: Settings, options: AppOptions | None = None
) -> Iterator[tuple[str, httpx.Client]]:
    """Serve ``create_app(settings)`` on a free port; yields its URL and an admin client."""
    _, token = issue_key(settings, scopes="admin")
    app = create_app(settings, options=options or AppOptions(freeze_gc=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=30) as http,
    ):
        yield url, http

"""API keys for tests that run the service with auth on: created through the real ApiKeys."""

from __future__ import annotations

from datetime import datetime

from trajops.security.keys import ApiKeys
from trajops.settings import Settings
from trajops.store import Store


def issue_key(
    settings: Settings,
    *,
    scopes: str = "admin",
    name: str = "tests",
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Create a key in the operational store ``settings`` point at; returns ``(id, token)``."""
    store = Store(settings.resolved_database_url)
    try:
        info, token = ApiKeys.from_settings(settings, store).create_key(
            name=name, scopes=scopes, expires_at=expires_at
        )
    finally:
        store.dispose()
    return info.id, token

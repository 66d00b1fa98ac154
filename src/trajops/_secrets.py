"""Server-side secrets: from a setting, or generated once and kept (mode 0600) under ``home``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from trajops.settings import Settings


def load_or_create_secret(settings: Settings, configured: SecretStr | None, filename: str) -> bytes:
    """``configured`` when set, else a random 32-byte hex secret in ``home/filename``.

    The file is created atomically with mode 0600 on first use. Replicas that share a store must
    share the secret: set it explicitly in production.
    """
    if configured is not None:
        return configured.get_secret_value().encode()
    path: Path = settings.ensure_home() / filename
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip().encode()

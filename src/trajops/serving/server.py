"""Run the prediction service under uvicorn (one process, or N worker processes)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr
from starlette.types import ASGIApp

from trajops.errors import ServiceUnavailable, ValidationError
from trajops.serving.http_protocol import ServiceProtocol
from trajops.settings import Settings

log = logging.getLogger(__name__)

FACTORY = "trajops.serving.app:app_from_env"
"""Import string of the zero-argument factory each worker process calls."""

WORKER_HEALTHCHECK_S = 30
"""How long uvicorn's supervisor waits for a worker process to answer a health check before
it kills and replaces it. uvicorn's default, 5 s, is shorter than a worker's start on a loaded
2-core machine: there it killed starting workers again and again, and 2 workers served as 1."""


def settings_to_env(settings: Settings) -> dict[str, str | None]:
    """``TRAJOPS_*`` variables that rebuild ``settings`` in another process (``None``: unset)."""
    env: dict[str, str | None] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        key = f"TRAJOPS_{name.upper()}"
        if value is None:
            env[key] = None
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, str | int | float | Path):
            env[key] = str(value)
        else:
            env[key] = json.dumps(value)
    return env


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_exposure(settings: Settings, host: str, *, insecure: bool) -> None:
    """Refuse to serve without authentication beyond loopback unless ``insecure`` says so.

    Raises:
        ValidationError: auth is off and ``host`` is not a loopback address.
    """
    if settings.auth_enabled or is_loopback(host):
        return
    if not insecure:
        raise ValidationError(
            f"refusing to serve on {host} with authentication off (TRAJOPS_AUTH_ENABLED=false): "
            "anyone who reaches the port could switch models. Turn auth on, bind 127.0.0.1, "
            "or pass --insecure to accept that",
            details=[{"loc": ["host"], "msg": "non-loopback bind with auth off"}],
        )
    log.warning(
        "INSECURE: serving on %s with authentication OFF; anyone who reaches this port can "
        "predict, switch the default model and read monitoring data",
        host,
    )


def run_server(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    insecure: bool = False,
) -> None:
    """Serve ``create_app(settings)`` until interrupted.

    With one worker the app object is served directly. With more, uvicorn's factory mode
    starts each worker on :data:`FACTORY` (its supervisor replaces a worker that stops answering
    for :data:`WORKER_HEALTHCHECK_S`); ``settings`` reach the workers through the environment
    (see :func:`settings_to_env`). Access logs are off: ``/metrics`` counts every
    request, and a per-request log line costs more than the prediction itself. Request heads
    are bounded (:mod:`trajops.serving.http_protocol`).

    Args:
        settings: configuration.
        host: address to bind (default ``settings.host``).
        port: port to bind (default ``settings.port``; 0 picks a free port).
        workers: worker processes (default ``settings.workers``).
        insecure: allow a non-loopback bind with authentication off (logged loudly).

    Raises:
        ValidationError: a port or worker count out of range, or auth off beyond loopback
            without ``insecure``.
    """
    import uvicorn

    host = host or settings.host
    port = settings.port if port is None else port
    workers = settings.workers if workers is None else workers
    if not 0 <= port <= 65535:
        raise ValidationError(
            f"port must be between 0 and 65535, got {port}",
            details=[{"loc": ["port"], "msg": "out of range"}],
        )
    if not 1 <= workers <= 64:
        raise ValidationError(
            f"workers must be between 1 and 64, got {workers}",
            details=[{"loc": ["workers"], "msg": "out of range"}],
        )
    check_exposure(settings, host, insecure=insecure)
    common = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "info",
        "http": ServiceProtocol,
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_S,
    }
    if workers == 1:
        from trajops.serving.app import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    for key, value in settings_to_env(settings).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    uvicorn.run(FACTORY, factory=True, workers=workers, **common)  # type: ignore[arg-type]


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server in a background thread (tests, demos).

    Args:
        app: the ASGI app (its lifespan runs).
        host: address to bind.
        port: port to bind; 0 picks a free one.
        timeout_s: longest wait for startup.

    Yields:
        The base URL, e.g. ``http://127.0.0.1:54321``.

    Raises:
        ServiceUnavailable: the server did not start in time.
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        http=ServiceProtocol,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="trajops-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceUnavailable(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)

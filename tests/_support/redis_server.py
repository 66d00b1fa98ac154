"""A private ``redis-server`` on a free loopback port, safe to kill and restart.

Tests that break Redis must never touch the machine's shared server (127.0.0.1:6379): this one
runs without persistence in its own folder and comes back on the same port after :meth:`kill`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests._support.services import free_port


def redis_server_binary() -> str | None:
    """The ``redis-server`` executable, or None when Redis is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class PrivateRedis:
    """One ``redis-server`` process; :meth:`kill` and :meth:`start` keep the same port."""

    def __init__(self, *, start_timeout_s: float = 10.0) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="trajops-redis-"))
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A short-timeout client (the caller closes it)."""
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def start(self) -> None:
        """Start the server and wait until it answers ``PING``."""
        cmd = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no save): the crash a client must survive."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started :class:`PrivateRedis`, killed and removed afterwards."""
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()

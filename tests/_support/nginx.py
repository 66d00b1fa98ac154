"""nginx in front of `trajops serve` replicas, for the replica test and bench/replicas.py.

The shipped ``deploy/nginx.conf`` is rendered with private ports and paths (its lines marked
``# test:`` are rewritten), so what is tested and measured is the production config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str | None:
    """The nginx executable (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def render_config(*, listen: int, replicas: list[int], run_dir: Path) -> str:
    """``deploy/nginx.conf`` listening on ``listen`` in front of ``replicas`` (ports)."""
    out: list[str] = []
    if os.geteuid() == 0:
        out.append("user root;  # workers must reach the run's temp folders")
    replicas_done = False
    for line in CONFIG.read_text().splitlines():
        if "# test: replicas" in line:
            if not replicas_done:
                out += [
                    f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in replicas
                ]
                replicas_done = True
            continue
        if "# test: rewritten" in line:
            key = line.split()[0]
            line = {
                "worker_processes": "worker_processes 1;",
                "pid": f"pid {run_dir / 'nginx.pid'};",
                "error_log": f"error_log {run_dir / 'error.log'} warn;",
                "client_body_temp_path": f"client_body_temp_path {run_dir / 'body'};",
                "proxy_temp_path": f"proxy_temp_path {run_dir / 'proxy'};",
                "listen": f"listen 127.0.0.1:{listen};",
            }[key]
        out.append(line)
    if not replicas_done:
        raise ValueError(f"{CONFIG} lost its `# test: replicas` lines")
    return "\n".join(out) + "\n"


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Wait until ``url`` answers 200 while ``proc`` lives."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            raise RuntimeError(f"process exited early: {err}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in time")


def start_replica(port: int, *, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``trajops serve --port PORT`` with ``env`` (not waited for)."""
    trajops = str(Path(sys.executable).with_name("trajops"))
    return subprocess.Popen(
        [trajops, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def start_nginx(*, listen: int, replicas: list[int], run_dir: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground with the rendered config; waits for ``/healthz`` through it."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(render_config(listen=listen, replicas=replicas, run_dir=run_dir))
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(run_dir), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_http(f"http://127.0.0.1:{listen}/healthz", proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Terminate ``proc`` (kill after ``timeout_s``)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

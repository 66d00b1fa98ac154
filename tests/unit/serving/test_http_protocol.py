"""Request heads are bounded: 431 and a closed connection past the limit, nothing else changes.

The protocol subclasses uvicorn's private httptools protocol; the first test fails when the
hooks it relies on change (uvicorn is pinned below the next minor release in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trajops.serving import serve_in_thread
from trajops.serving.http_protocol import MAX_HEADER_BYTES, ServiceProtocol


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(_echo_length) as base:  # type: ignore[arg-type]
        yield base


def test_the_private_hooks_are_still_there() -> None:
    params = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert params[:4] == ["self", "config", "server_state", "app_state"]
    for hook in ("data_received", "on_message_complete", "connection_made"):
        assert callable(getattr(HttpToolsProtocol, hook))
    assert issubclass(ServiceProtocol, HttpToolsProtocol)


def _raw(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)  # refused while still sending: the answer is already there
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_oversized_head_is_refused_with_431(url: str) -> None:
    big = b"x" * (MAX_HEADER_BYTES + 1)
    answer = _raw(url, b"GET / HTTP/1.1\r\nhost: x\r\nx-junk: " + big + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"headers_too_large" in answer


def test_the_service_stays_responsive_while_huge_heads_arrive(url: str) -> None:
    huge = b"GET / HTTP/1.1\r\nhost: x\r\nx-junk: " + b"y" * (8 << 20)
    floods = [threading.Thread(target=_raw, args=(url, huge)) for _ in range(6)]
    for t in floods:
        t.start()
    r = httpx.get(url, timeout=5)
    for t in floods:
        t.join(30)
    assert r.status_code == 200


def test_heads_under_the_limit_and_large_bodies_pass(url: str) -> None:
    headers = {"x-fill": "z" * (MAX_HEADER_BYTES // 2)}
    assert httpx.get(url, headers=headers, timeout=10).text == "0"
    body = b"b" * (3 << 20)  # arrives in many reads right after the head
    assert httpx.post(url, content=body, timeout=30).text == str(len(body))
    with httpx.Client(base_url=url, timeout=10) as keep_alive:  # one connection, many heads
        assert [keep_alive.post("/", content=b"abc").text for _ in range(50)] == ["3"] * 50

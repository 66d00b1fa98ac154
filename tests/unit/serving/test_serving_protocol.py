"""The service's HTTP protocol: one socket write per response, HTTP semantics unchanged."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from trajops.serving.protocol import CoalescingTransport
from trajops.serving.server import serve_in_thread


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def _step() -> None:
    await asyncio.sleep(0)  # lets the callbacks scheduled so far run


def test_writes_of_one_step_go_out_as_one_write() -> None:
    async def scenario() -> RecordingTransport:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner, asyncio.get_running_loop())
        outer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        outer.write(b"")  # nothing to send: no write of its own
        outer.write(b"ok")
        assert inner.writes == [] and outer.get_write_buffer_size() == 40
        await _step()
        outer.writelines([b"a", memoryview(b"b")])
        await _step()
        return inner

    inner = asyncio.run(scenario())
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ab"]


def test_close_sends_what_is_gathered_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        for inner in (closed, aborted):
            outer = CoalescingTransport(inner, loop)
            outer.write(b"last response")
            outer.close() if inner is closed else outer.abort()
            outer.write(b"late")  # after close: the scheduled write finds it closing
            await _step()
        return closed, aborted

    closed, aborted = asyncio.run(scenario())
    assert closed.events == ["write", "close"] and closed.writes == [b"last response"]
    assert aborted.events == ["abort"] and aborted.writes == []


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/n/<i>`` answers ``i`` with a length; ``/stream`` answers three chunks."""
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].rsplit("/", 1)[-1].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (head, body) pairs of length-delimited or chunked responses."""
    data = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end]
            rest = data[head_end + 4 :]
            length = _content_length(head)
            if length is not None and len(rest) >= length:
                out.append((head, rest[:length]))
                data = rest[length:]
                continue
            if length is None and rest.endswith(b"0\r\n\r\n"):
                out.append((head, _unchunk(rest)))
                data = b""
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} of {count} responses"
        data += chunk
    return out


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def _unchunk(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the coalesced writes the server makes (proves the protocol is in use)."""
    count = [0]
    original = CoalescingTransport._write_gathered

    def counting(self: CoalescingTransport) -> None:
        count[0] += 1
        original(self)

    monkeypatch.setattr(CoalescingTransport, "_write_gathered", counting)
    return count


def test_keep_alive_pipelining_streaming_and_close_over_a_real_server(writes: list[int]) -> None:
    with serve_in_thread(_app) as url:  # type: ignore[arg-type]
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            for i in range(3):  # keep-alive: one request after another
                sock.sendall(f"GET /n/{i} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                [(head, body)] = _read_responses(sock, 1)
                assert head.startswith(b"HTTP/1.1 200") and body == str(i).encode()
            # pipelined: three requests in one segment, answered in order
            sock.sendall(
                b"".join(f"GET /n/{i} HTTP/1.1\r\nhost: x\r\n\r\n".encode() for i in (7, 8, 9))
            )
            assert [body for _, body in _read_responses(sock, 3)] == [b"7", b"8", b"9"]
            sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")  # chunks over several steps
            [(head, body)] = _read_responses(sock, 1)
            assert b"transfer-encoding: chunked" in head.lower() and body == b"one,two,three"
            sock.sendall(b"GET /n/42 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            [(head, body)] = _read_responses(sock, 1)
            assert body == b"42" and sock.recv(10) == b""  # whole response, then the close
    # 7 length-delimited responses (14 ASGI messages) and the stream's 5: fewer writes than
    # messages (close() counts too)
    assert 7 <= writes[0] < 19

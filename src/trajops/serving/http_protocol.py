"""The service's HTTP protocol: bounded request heads.

uvicorn's httptools protocol has no limit on header size: llhttp buffers a header until it is
complete, so a client sending 50 MB of headers holds that memory and the event loop's time.
:class:`ServiceProtocol` counts the bytes of each request's head (request line and headers) as
they arrive, before the parser sees them, and answers ``431 Request Header Fields Too Large``
and closes the connection past ``MAX_HEADER_BYTES``. (Coalescing each response into one
socket write, as an earlier protocol did, made no difference in a same-run comparison:
docs/performance.md.)

It subclasses uvicorn's ``httptools_impl.HttpToolsProtocol`` (a private module): the project
pins uvicorn below the next minor release, and ``tests/unit/serving/test_http_protocol.py``
fails when the hooks used here change.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024
"""Largest request head (request line + headers) accepted; nginx's own limit is below it."""

_END = b"\r\n\r\n"
_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_BODY = (
    b'{"error":{"code":"headers_too_large","message":"request headers larger than %d bytes",'
    b'"details":[{"loc":["headers"],"msg":"too large"}]}}'
) % MAX_HEADER_BYTES


class ServiceProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on each request's head."""

    _in_head = True
    _head_bytes = 0
    _tail = b""

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            window = self._tail + data
            end = window.find(_END)
            if end < 0:
                self._head_bytes += len(data)
                self._tail = window[-3:]
            else:
                self._head_bytes += end + len(_END) - len(self._tail)
                self._in_head, self._tail = False, b""
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse()
                return
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def _refuse(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_RESPONSE % (len(_BODY), _BODY))
            self.transport.close()

"""The HTTP protocol the service runs under uvicorn: one socket write per response.

uvicorn's httptools protocol writes a response in two ``transport.write`` calls: the status
line and headers at ``http.response.start``, then the body. On a TCP transport each call is
its own ``send`` system call, and on a busy server (loopback or not) each one pays for the
whole network path and for waking the reader. :class:`CoalescingTransport` gathers every
write made during one step of the event loop and hands them to the socket as one write at the
end of that step (``loop.call_soon``): a response that is sent in one go (every JSON response
of this service) leaves in one system call. Order is kept; ``close`` and ``write_eof`` write
what is gathered first; ``abort`` drops it, as it drops the transport's own buffer.

Measured (``bench/serve_cpu.py``): the API worker's CPU per ``/v1/predict`` and the bare echo
endpoint's both drop (docs/performance.md), so the serving bench runs its echo baseline on
this protocol too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """Wraps a transport; writes made in one event-loop step go out as one write.

    Args:
        transport: the connection's transport.
        loop: the loop running the connection (schedules the write at the end of the step).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._gathered: list[bytes | bytearray | memoryview] = []

    # --- writing ----------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._gathered:
            self._loop.call_soon(self._write_gathered)
        self._gathered.append(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _write_gathered(self) -> None:
        gathered, self._gathered = self._gathered, []
        if not gathered or self._transport.is_closing():
            return  # the connection went away meanwhile: the transport drops writes too
        self._transport.write(gathered[0] if len(gathered) == 1 else b"".join(gathered))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._gathered)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._write_gathered()
        self._transport.write_eof()

    # --- closing ----------------------------------------------------------------------
    def close(self) -> None:
        self._write_gathered()  # the transport sends its buffer before it closes
        self._transport.close()

    def abort(self) -> None:
        self._gathered = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    # --- the rest is the transport's own ---------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`.

    Pass it as uvicorn's ``http`` (``uvicorn.run(app, http=CoalescingHttpToolsProtocol)``).
    Flow control and the connection's addresses use the socket's transport itself.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

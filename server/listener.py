"""One port for every protocol, like brpc: each new connection is sniffed for the HTTP/2 preface.
HTTP/1.1 connections are handed to uvicorn's httptools protocol, with limits on the request head (size and
read time); HTTP/2 (gRPC) connections are spliced to the in-process grpc.aio server on a unix socket."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.codecs.errors import json_error
from server.errors import HeadersTooLarge, RequestTimeout, ServingError

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
log = logging.getLogger("server.listener")


class _Splice(asyncio.Protocol):
    """Copies bytes from this connection to `peer`, pausing the peer's reads when our writes back up."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self._early: list[bytes] = []  # bytes that arrived before the peer was attached
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def attach(self, peer: asyncio.Transport) -> None:
        """Start copying to `peer`, first whatever arrived before it existed (the server may speak first)."""
        self.peer = peer
        for data in self._early:
            peer.write(data)
        self._early.clear()
        if self._early_eof and peer.can_write_eof():
            peer.write_eof()

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self._early.append(data)
        else:
            self.peer.write(data)

    def eof_received(self) -> bool | None:
        if self.peer is None:
            self._early_eof = True
        elif self.peer.can_write_eof():
            self.peer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on an HTTP/1.1 request head: bytes (request line + headers) and seconds to receive it."""

    max_bytes: int = 64 * 1024
    timeout_s: float = 20.0


def _refuse(transport: asyncio.Transport, error: ServingError) -> None:
    """Answer with the error's JSON body and close: the connection is not worth keeping."""
    body = json_error(error)
    reason = {408: "Request Timeout", 431: "Request Header Fields Too Large"}.get(error.status, "Error")
    transport.write(
        f"HTTP/1.1 {error.status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n".encode("latin-1")
        + body
    )
    transport.close()


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head: over `max_bytes` gets 431, a head that takes
    longer than `timeout_s` to arrive (slowloris) gets 408; both close the connection."""

    def __init__(self, limits: HeadLimits, **uvicorn_args: Any) -> None:
        super().__init__(**uvicorn_args)
        self._limits = limits
        self._in_head = True  # reading a request line and headers (the start of every message)
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen, for a head end split across reads
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_head and not self.transport.is_closing():
            # count the head's bytes before httptools buffers them (it keeps a header whole, however long)
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(end + 4 - len(self._tail), 0)
            self._tail = window[-3:]
            if self._head_bytes > self._limits.max_bytes:
                self._stop_timer()
                _refuse(self.transport, HeadersTooLarge(f"request headers are over {self._limits.max_bytes} bytes"))
                return
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._limits.timeout_s, self._head_too_slow)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            _refuse(self.transport, RequestTimeout(f"request head not received within {self._limits.timeout_s:g} s"))


def sniffing_protocol(grpc_socket: str, limits: HeadLimits = HeadLimits()) -> type[asyncio.Protocol]:
    """A uvicorn `http=` protocol class that routes HTTP/2 connections to the gRPC unix socket."""

    class SniffingProtocol(asyncio.Protocol):
        def __init__(self, **uvicorn_args: Any) -> None:
            self._args = uvicorn_args
            self._transport: asyncio.Transport | None = None
            self._buffer = b""
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport  # type: ignore[assignment]
            # a connection that never says which protocol it speaks is closed like a stalled request head
            self._timer = asyncio.get_running_loop().call_later(limits.timeout_s, self._silent)

        def _silent(self) -> None:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

        def data_received(self, data: bytes) -> None:
            self._buffer += data
            head = self._buffer[: len(H2_PREFACE)]
            if head != H2_PREFACE[: len(head)]:
                self._become_http()
            elif len(head) == len(H2_PREFACE):
                self._become_grpc()

        def eof_received(self) -> bool | None:
            return None

        def connection_lost(self, exc: Exception | None) -> None:
            self._buffer = b""
            self._cancel()

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _become_http(self) -> None:
            assert self._transport is not None
            self._cancel()
            http = LimitedHttp(limits, **self._args)
            self._transport.set_protocol(http)
            http.connection_made(self._transport)
            http.data_received(self._buffer)
            self._buffer = b""

        def _become_grpc(self) -> None:
            assert self._transport is not None
            self._cancel()
            client = _Splice()
            client.connection_made(self._transport)
            self._transport.set_protocol(client)
            self._transport.pause_reading()
            pending, self._buffer = self._buffer, b""
            asyncio.get_running_loop().create_task(_connect_upstream(client, pending, grpc_socket))

    return SniffingProtocol


async def _connect_upstream(client: _Splice, pending: bytes, path: str) -> None:
    assert client.transport is not None
    loop = asyncio.get_running_loop()
    try:
        upstream_transport, upstream = await loop.create_unix_connection(_Splice, path)
    except OSError as exc:
        log.error("cannot reach the gRPC server at %s: %s", path, exc)
        client.transport.close()
        return
    upstream_transport.write(pending)
    client.attach(upstream_transport)
    upstream.attach(client.transport)
    if client.transport.is_closing():
        upstream_transport.close()
    else:
        client.transport.resume_reading()

"""One port for every protocol, like brpc: each new connection is sniffed for the HTTP/2 preface.
HTTP/1.1 connections are handed to uvicorn's httptools protocol, with limits on the request head (size and
read time); HTTP/2 (gRPC) connections are spliced to the in-process grpc.aio server on a unix socket. Every
connection is counted against --max_connections, idle ones shed first (with --direct_http, those a worker
serves too: server.acceptor)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.codecs.errors import json_error
from server.errors import HeadersTooLarge, RequestTimeout, ServingError, Unavailable

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
log = logging.getLogger("server.listener")


class _Splice(asyncio.Protocol):
    """Copies bytes from this connection to `peer`, pausing the peer's reads when our writes back up.
    `on_data` is called whenever bytes arrive (the connection table's activity clock); `on_lost` when it closes."""

    def __init__(self, on_data: Callable[[], None] | None = None, on_lost: Callable[[], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self._early: list[bytes] = []  # bytes that arrived before the peer was attached
        self._early_eof = False
        self._on_data = on_data
        self._on_lost = on_lost

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
        if self._on_data is not None:
            self._on_data()
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
        if self._on_lost is not None:
            self._on_lost()
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


@dataclass
class _Open:
    idle: Callable[[], bool]  # whether the connection may be closed now without cutting a request short
    active: float  # when bytes last arrived on it (time.monotonic)
    close: Callable[[], None]


class ConnectionTable:
    """The open client connections, at most `cap` (None: no cap). At the cap a new connection takes the place of
    the one idle the longest: a keep-alive connection between requests, one that has not spoken yet, or a gRPC
    connection silent for longer than any call on it could run. With none idle, the new one is refused (503)."""

    def __init__(self, cap: int | None, grpc_idle_s: float, on_event: Callable[[str], None] | None = None) -> None:
        self.cap = cap
        self.grpc_idle_s = grpc_idle_s
        self._open: dict[Hashable, _Open] = {}  # by transport, or a key for a connection a worker serves
        self._on_event = on_event  # called with "shed" (an idle one closed for room) or "refused" (no room)

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, transport: asyncio.BaseTransport, idle: Callable[[], bool]) -> bool:
        """Track `transport`, making room if needed; False (and nothing tracked) when there is none."""
        if not self._room():
            return False
        self._open[transport] = _Open(idle, time.monotonic(), transport.close)
        return True

    def adopt(self) -> Callable[[], None] | None:
        """Count a connection a worker serves (--direct_http), making room as admit() does; None when there is
        none. The front cannot see whether such a connection is idle, so it is never shed. The callback returned
        forgets it (the worker reported it closed)."""
        if not self._room():
            return None
        key = object()
        self._open[key] = _Open(lambda: False, time.monotonic(), lambda: None)

        def forget() -> None:
            self._open.pop(key, None)

        return forget

    def _room(self) -> bool:
        """Whether one more connection fits, after closing the one idle longest if at the cap."""
        if self.cap is None or len(self._open) < self.cap:
            return True
        victims = [(entry.active, key) for key, entry in self._open.items() if entry.idle()]
        if not victims:
            self._event("refused")
            return False
        _, victim = min(victims, key=lambda pair: pair[0])
        self._open.pop(victim).close()
        self._event("shed")
        return True

    def watch(self, transport: asyncio.BaseTransport, idle: Callable[[], bool]) -> None:
        """The connection now speaks a protocol that knows better when it is idle."""
        if transport in self._open:
            self._open[transport].idle = idle

    def touch(self, transport: asyncio.BaseTransport) -> None:
        entry = self._open.get(transport)
        if entry is not None:
            entry.active = time.monotonic()

    def silent(self, transport: asyncio.BaseTransport) -> bool:
        entry = self._open.get(transport)
        return entry is not None and time.monotonic() - entry.active > self.grpc_idle_s

    def forget(self, transport: asyncio.BaseTransport) -> None:
        self._open.pop(transport, None)

    def _event(self, what: str) -> None:
        if self._on_event is not None:
            self._on_event(what)


_LINGER_S = 1.0  # a refused connection stays half-open this long, so the request the client already sent does
# not make the kernel reset the connection (and drop the 503) before the client reads it


def _answer(transport: asyncio.Transport, error: ServingError, extra: str = "", linger_s: float = 0.0) -> None:
    """Answer with the error's JSON body and close: the connection is not worth keeping. With `linger_s`, stop
    writing at once but close only after that long, discarding what the client sends meanwhile."""
    body = json_error(error)
    reason = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}.get(
        error.status, "Error"
    )
    transport.write(
        f"HTTP/1.1 {error.status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n".encode("latin-1")
        + body
    )
    if linger_s > 0 and transport.can_write_eof():
        transport.write_eof()
        asyncio.get_running_loop().call_later(linger_s, transport.close)
    else:
        transport.close()


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head: over `max_bytes` gets 431, a head that takes
    longer than `timeout_s` to arrive (slowloris) gets 408; both close the connection."""

    def __init__(self, limits: HeadLimits, table: ConnectionTable, **uvicorn_args: Any) -> None:
        super().__init__(**uvicorn_args)
        self._limits = limits
        self._table = table
        self._in_head = True  # reading a request line and headers (the start of every message)
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen, for a head end split across reads
        self._head_timer: asyncio.TimerHandle | None = None

    def idle(self) -> bool:
        """Between requests: the last answer is out and no byte of the next request has come."""
        return self._in_head and self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete)

    def data_received(self, data: bytes) -> None:
        self._table.touch(self.transport)
        if self._in_head and not self.transport.is_closing():
            # count the head's bytes before httptools buffers them (it keeps a header whole, however long)
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(end + 4 - len(self._tail), 0)
            self._tail = window[-3:]
            if self._head_bytes > self._limits.max_bytes:
                self._stop_timer()
                _answer(self.transport, HeadersTooLarge(f"request headers are over {self._limits.max_bytes} bytes"))
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
        self._table.forget(self.transport)
        super().connection_lost(exc)

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            _answer(self.transport, RequestTimeout(f"request head not received within {self._limits.timeout_s:g} s"))


def sniffing_protocol(grpc_socket: str, limits: HeadLimits = HeadLimits(),
                      table: ConnectionTable | None = None) -> type[asyncio.Protocol]:  # fmt: skip
    """A uvicorn `http=` protocol class that routes HTTP/2 connections to the gRPC unix socket, and keeps every
    connection in `table` (no cap without one)."""
    connections = table if table is not None else ConnectionTable(None, 0.0)

    class SniffingProtocol(asyncio.Protocol):
        def __init__(self, **uvicorn_args: Any) -> None:
            self._args = uvicorn_args
            self._transport: asyncio.Transport | None = None
            self._buffer = b""
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if not connections.admit(transport, lambda: True):  # it has not spoken yet: idle
                busy = Unavailable(f"too many connections (--max_connections {connections.cap}), all in use")
                _answer(cast(asyncio.Transport, transport), busy, "retry-after: 1\r\n", linger_s=_LINGER_S)
                return
            self._transport = transport  # type: ignore[assignment]
            # a connection that never says which protocol it speaks is closed like a stalled request head
            self._timer = asyncio.get_running_loop().call_later(limits.timeout_s, self._silent)

        def _silent(self) -> None:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

        def data_received(self, data: bytes) -> None:
            if self._transport is None:  # refused
                return
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
            if self._transport is not None:
                connections.forget(self._transport)

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _become_http(self) -> None:
            assert self._transport is not None
            self._cancel()
            http = LimitedHttp(limits, connections, **self._args)
            connections.watch(self._transport, http.idle)
            self._transport.set_protocol(http)
            http.connection_made(self._transport)
            http.data_received(self._buffer)
            self._buffer = b""

        def _become_grpc(self) -> None:
            assert self._transport is not None
            self._cancel()
            transport = self._transport
            connections.watch(transport, lambda: connections.silent(transport))
            touch = functools.partial(connections.touch, transport)
            client = _Splice(on_data=touch, on_lost=functools.partial(connections.forget, transport))
            client.connection_made(transport)
            transport.set_protocol(client)
            transport.pause_reading()
            pending, self._buffer = self._buffer, b""
            asyncio.get_running_loop().create_task(_connect_upstream(client, pending, grpc_socket, touch))

    return SniffingProtocol


async def _connect_upstream(client: _Splice, pending: bytes, path: str, on_answer: Callable[[], None]) -> None:
    assert client.transport is not None
    loop = asyncio.get_running_loop()
    try:
        upstream_transport, upstream = await loop.create_unix_connection(lambda: _Splice(on_data=on_answer), path)
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

"""One port for every protocol, like brpc: each new connection is sniffed for the HTTP/2 preface.
HTTP/1.1 connections are handed to uvicorn's httptools protocol; HTTP/2 (gRPC) connections are spliced
to the in-process grpc.aio server listening on a unix socket."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


def sniffing_protocol(grpc_socket: str) -> type[asyncio.Protocol]:
    """A uvicorn `http=` protocol class that routes HTTP/2 connections to the gRPC unix socket."""

    class SniffingProtocol(asyncio.Protocol):
        def __init__(self, **uvicorn_args: Any) -> None:
            self._args = uvicorn_args
            self._transport: asyncio.Transport | None = None
            self._buffer = b""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport  # type: ignore[assignment]

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

        def _become_http(self) -> None:
            assert self._transport is not None
            http = HttpToolsProtocol(**self._args)
            self._transport.set_protocol(http)
            http.connection_made(self._transport)
            http.data_received(self._buffer)
            self._buffer = b""

        def _become_grpc(self) -> None:
            assert self._transport is not None
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

"""Length-prefixed pickle frames over a socketpair: blocking on the worker side, an asyncio protocol on the front
side (each message handed to a callback as soon as its last byte is read, with no task switch between)."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("<Q")


def encode(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=5)
    return _HEADER.pack(len(payload)) + payload


def send(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode(message))


def recv(sock: socket.socket) -> Any:
    """The next message; EOFError when the other side closed."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    return pickle.loads(_recv_exactly(sock, size))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("channel closed")
        got += n
    return bytes(buffer)


class Frames(asyncio.Protocol):
    """Front side of a channel: `on_message(obj)` for every whole frame, `on_lost(exc)` once when it closes."""

    def __init__(self, on_message: Callable[[Any], None], on_lost: Callable[[Exception | None], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            message = pickle.loads(buffer[start + _HEADER.size : end])
            start = end
            self._on_message(message)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._on_lost(exc)

    @property
    def open(self) -> bool:
        """Whether messages sent now can reach the other side."""
        return self.transport is not None and not self.closed.done() and not self.transport.is_closing()

    def send(self, message: Any) -> None:
        assert self.transport is not None
        self.transport.write(encode(message))

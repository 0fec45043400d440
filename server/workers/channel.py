"""Length-prefixed pickle frames over a socketpair: blocking on the worker side, asyncio on the front side."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
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


async def read_message(reader: asyncio.StreamReader) -> Any:
    """Front side: the next message; asyncio.IncompleteReadError when the worker is gone."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return pickle.loads(await reader.readexactly(size))

"""Handing accepted client connections from the front to a worker process: each connection's file descriptor
travels as SCM_RIGHTS over a SOCK_SEQPACKET socketpair (one record per connection, so descriptors never merge),
with the front's id for it. The receiving process owns the connection from then on; the front closes its copy."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

_ID = struct.Struct("<Q")


def lane_pair() -> tuple[socket.socket, socket.socket]:
    """(front end, worker end) of a new lane."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def pass_connection(lane: socket.socket, fd: int, conn_id: int) -> bool:
    """Send connection `fd` down `lane`; False if the lane cannot take it now (full or closed): the caller keeps
    the connection. The caller still closes its own `fd` afterwards (the record holds a reference)."""
    try:
        return socket.send_fds(lane, [_ID.pack(conn_id)], [fd], socket.MSG_DONTWAIT) == _ID.size
    except OSError:
        return False


class LaneReceiver:
    """Worker end of a lane: calls `on_connection(sock, conn_id)` for every connection that arrives, from the
    running event loop; `on_closed()` once when the front's end closes."""

    def __init__(self, lane: socket.socket, on_connection: Callable[[socket.socket, int], None],
                 on_closed: Callable[[], None]) -> None:  # fmt: skip
        self._lane = lane
        self._on_connection = on_connection
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        lane.setblocking(False)
        self._loop.add_reader(lane.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._lane, _ID.size, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:  # end of the lane: the front is gone
                self.close()
                self._on_closed()
                return
            if len(data) != _ID.size or len(fds) != 1:
                for fd in fds:
                    socket.close(fd)
                continue
            (conn_id,) = _ID.unpack(data)
            self._on_connection(socket.socket(fileno=fds[0]), conn_id)

    def close(self) -> None:
        if self._lane.fileno() >= 0:
            self._loop.remove_reader(self._lane.fileno())
            self._lane.close()

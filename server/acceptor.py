"""--direct_http's accept loop. The front accepts on the port itself and, without reading a byte, peeks at each
new connection's first four: an HTTP/1.1 request goes whole to an inference worker (server.workers.lanes), which
serves it from then on; HTTP/2 (gRPC), a connection no worker can take, or one that sends fewer than four bytes
at first, is served by the front as without --direct_http (server.listener)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from server.listener import H2_PREFACE, ConnectionTable

log = logging.getLogger("server.acceptor")
_ACCEPTS_PER_WAKE = 64  # a burst of connections is accepted in batches, so the loop keeps serving between them
_SNIFF = len("GET ")
HandOff = Callable[[int, Callable[[], None]], bool]  # (fd, on_closed) -> whether a worker took the connection


class Acceptor:
    """Accepts on `listener`; each connection goes to `hand_off` (counted in `table`) or `serve_here`."""

    def __init__(self, listener: socket.socket, table: ConnectionTable, hand_off: HandOff,
                 serve_here: Callable[[socket.socket], None], silent_s: float) -> None:  # fmt: skip
        self._listener = listener
        self._table = table
        self._hand_off = hand_off
        self._serve_here = serve_here
        self._silent_s = silent_s  # a connection that says nothing for this long is closed (as a stalled head)
        self._waiting: dict[socket.socket, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener.setblocking(False)
        self._loop.add_reader(self._listener.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; connections not yet sniffed are closed."""
        if self._loop is None:
            return
        if self._listener.fileno() >= 0:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
        for conn in list(self._waiting):
            self._unwatch(conn)
            conn.close()

    def _accept(self) -> None:
        assert self._loop is not None
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, or the like: the kernel keeps the rest queued
                log.error("cannot accept a connection: %s", exc)
                return
            conn.setblocking(False)
            self._waiting[conn] = self._loop.call_later(self._silent_s, self._silent, conn)
            self._loop.add_reader(conn.fileno(), self._sniff, conn)

    def _sniff(self, conn: socket.socket) -> None:
        try:
            head = conn.recv(_SNIFF, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            head = b""
        self._unwatch(conn)
        if not head:  # closed before it said anything
            conn.close()
            return
        if len(head) == _SNIFF and head != H2_PREFACE[:_SNIFF]:
            forget = self._table.adopt()
            if forget is not None:
                if self._hand_off(conn.fileno(), forget):
                    conn.close()  # our descriptor only: the worker holds the connection now
                    return
                forget()
        self._serve_here(conn)

    def _silent(self, conn: socket.socket) -> None:
        if conn in self._waiting:
            self._unwatch(conn)
            conn.close()

    def _unwatch(self, conn: socket.socket) -> None:
        timer = self._waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()
        assert self._loop is not None
        self._loop.remove_reader(conn.fileno())

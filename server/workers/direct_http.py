"""--direct_http inside a worker: the client connections the front handed over, served by uvicorn's httptools
protocol (the same bounded request head as the front's) through the same ASGI stack: CORS, the API-key gate and
the inference routes, whose jobs for this worker's model run right here. Every other request (health, metrics,
model info, OpenAPI...) is relayed to the front's app, which holds the whole server's state."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import socket
import termios
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from server.codecs.errors import JSON, json_error
from server.dataplane import DataPlane
from server.errors import ServingError
from server.handoff import LaneReceiver
from server.listener import ConnectionTable, HeadLimits, LimitedHttp
from server.rest.auth import AuthGate
from server.rest.cors import with_cors
from server.rest.inference import ClientGone, InferenceRoutes, Receive, Scope, Send, read_body, send_response
from server.settings import ServerSettings
from server.workers.messages import HttpCall
from server.workers.telemetry import FrontCalls, Recorder, ask_http


def _unread(transport: asyncio.BaseTransport) -> int:
    """Bytes received on a connection's socket and not yet read (FIONREAD)."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing():
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    except OSError:
        return 0
    return count[0]


RELAY_BODY_LIMIT = 2**20  # the relayed routes (health, metrics, model info, OpenAPI...) take no real body


class RelayToFront:
    """ASGI app: the request, read whole (up to 1 MiB, or --max_body_size if less), answered by the front's app."""

    def __init__(self, calls: FrontCalls, limit: int) -> None:
        self._calls = calls
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(receive, headers, self._limit)
            call = HttpCall(scope["method"], scope["path"], scope["query_string"], list(scope["headers"]), body,
                            scope.get("client"))  # fmt: skip
            reply = await ask_http(self._calls, call)
        except ClientGone:
            return
        except ServingError as exc:
            await send_response(send, exc.status, json_error(exc), JSON, {})
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})


class _Connection(LimitedHttp):
    """One handed-over connection: reports its end; once the worker drains, answers its request and closes."""

    def __init__(self, conn_id: int, owner: DirectHttp, **uvicorn_args: Any) -> None:
        super().__init__(owner.limits, owner.table, **uvicorn_args)
        self.conn_id = conn_id
        self._owner = owner

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._owner.draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._owner.lost(self.conn_id)


class DirectHttp:
    """Serves the connections that arrive on `lane`; `on_drained()` once draining and none is left open."""

    def __init__(self, settings: ServerSettings, plane: DataPlane, calls: FrontCalls, recorder: Recorder,
                 lane: socket.socket, on_drained: Callable[[], None]) -> None:  # fmt: skip
        routes = InferenceRoutes(plane, RelayToFront(calls, min(settings.max_body_size, RELAY_BODY_LIMIT)))
        gate = AuthGate(routes, settings.api_keys, settings.metrics_auth, None, recorder)
        self.config = uvicorn.Config(with_cors(gate, settings.cors_origins), lifespan="off", access_log=False,
                                     proxy_headers=False, log_config=None, http="httptools")  # fmt: skip
        self.config.load()
        self.state = ServerState()
        self.table = ConnectionTable(None, 0.0)
        self.limits = HeadLimits(settings.max_header_bytes, settings.header_timeout_s)
        self.draining = False
        self._drained = False
        self._recorder = recorder
        self._on_drained = on_drained
        self._open: dict[int, _Connection | None] = {}  # by id; None until its protocol exists
        self._loop = asyncio.get_running_loop()
        self._receiver = LaneReceiver(lane, self._accepted, lambda: None)
        self._clock: asyncio.TimerHandle | None = None
        self._tick()

    def _tick(self) -> None:
        """The Date and Server headers every answer carries, as uvicorn's own server keeps them (each second)."""
        date = [(b"date", formatdate(time.time(), usegmt=True).encode())] if self.config.date_header else []
        self.state.default_headers = date + self.config.encoded_headers
        self._clock = self._loop.call_later(1.0, self._tick)

    def _accepted(self, sock: socket.socket, conn_id: int) -> None:
        self._open[conn_id] = None
        self._loop.create_task(self._serve(sock, conn_id))

    async def _serve(self, sock: socket.socket, conn_id: int) -> None:
        def protocol() -> _Connection:
            connection = _Connection(conn_id, self, config=self.config, server_state=self.state, app_state={})
            self._open[conn_id] = connection
            return connection

        try:
            await self._loop.connect_accepted_socket(protocol, sock)
        except OSError:
            sock.close()
            self.lost(conn_id)

    def lost(self, conn_id: int) -> None:
        if conn_id not in self._open:
            return
        del self._open[conn_id]
        self._recorder.closed(conn_id)
        self._check_drained()

    def _check_drained(self) -> None:
        if self.draining and not self._open and not self._drained:
            self._drained = True
            self._on_drained()

    def alone(self) -> bool:
        """Whether only one request is in hand (its task is the only one running)."""
        return len(self.state.tasks) <= 1

    def drain(self) -> None:
        """Each connection closes once its request is answered; an idle one now, unless the next request's bytes
        are already there (sent before the drain began: it is answered first)."""
        self.draining = True
        for connection in list(self._open.values()):
            if connection is None or connection.transport is None:
                continue
            if connection.cycle is not None and not connection.cycle.response_complete:
                connection.cycle.keep_alive = False
            elif not _unread(connection.transport):
                connection.shutdown()
        self._check_drained()

    async def close(self, grace_s: float) -> None:
        """The front is gone: stop taking connections, let answers already made go out (up to grace_s)."""
        self._receiver.close()
        if self._clock is not None:
            self._clock.cancel()
        self.draining = True
        for connection in list(self._open.values()):
            if connection is not None and connection.transport is not None:
                connection.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                while self.state.connections:
                    await asyncio.sleep(0.01)

"""Front side of --direct_http: the workers' lanes for client connections, which connections each one holds,
and what they report (connections closed, drained, telemetry flushed)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from server.handoff import pass_connection
from server.workers.channel import Frames
from server.workers.messages import Drain, Flush, Telemetry

COLLECT_TIMEOUT_S = 2.0  # a worker busy longer than this is reported without its latest counts


@dataclass
class _Lane:
    sock: socket.socket
    frames: Frames
    connections: dict[int, Callable[[], None]] = field(default_factory=dict)  # id -> the front's on_closed
    drained: bool = False
    reports: list[asyncio.Future[None]] = field(default_factory=list)  # collect() waiting for the next Telemetry


class Lanes:
    """The lanes of one model's workers, by worker index."""

    def __init__(self) -> None:
        self._lanes: dict[int, _Lane] = {}
        self._ids = itertools.count(1)
        self._draining = False

    def add(self, index: int, sock: socket.socket, frames: Frames) -> None:
        self._lanes[index] = _Lane(sock, frames)
        if self._draining:
            frames.send(Drain())

    def remove(self, index: int) -> None:
        """The worker stopped: its connections closed with it."""
        lane = self._lanes.pop(index, None)
        if lane is None:
            return
        for on_closed in lane.connections.values():
            on_closed()
        for waiting in lane.reports:
            if not waiting.done():
                waiting.set_result(None)

    def hand_off(self, fd: int, on_closed: Callable[[], None]) -> bool:
        """Pass connection `fd` to the worker holding the fewest; False if none can take it."""
        open_lanes = [lane for lane in self._lanes.values() if lane.frames.open]
        if self._draining or not open_lanes:
            return False
        lane = min(open_lanes, key=lambda lane: len(lane.connections))
        conn_id = next(self._ids)
        if not pass_connection(lane.sock, fd, conn_id):
            return False
        lane.connections[conn_id] = on_closed
        return True

    def reported(self, index: int, telemetry: Telemetry) -> None:
        lane = self._lanes.get(index)
        if lane is None:
            return
        for conn_id in telemetry.closed:
            on_closed = lane.connections.pop(conn_id, None)
            if on_closed is not None:
                on_closed()
        for waiting in lane.reports:
            if not waiting.done():
                waiting.set_result(None)
        lane.reports.clear()

    def reported_drained(self, index: int) -> None:
        if index in self._lanes:
            self._lanes[index].drained = True

    async def collect(self) -> None:
        """Ask every worker for its Telemetry and wait for it (at most COLLECT_TIMEOUT_S)."""
        loop = asyncio.get_running_loop()
        waiting = []
        for lane in self._lanes.values():
            if lane.frames.open:
                future: asyncio.Future[None] = loop.create_future()
                lane.reports.append(future)
                waiting.append(future)
                lane.frames.send(Flush())
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waiting), COLLECT_TIMEOUT_S)

    def drain(self) -> None:
        """No more connections; every worker closes its idle ones and the rest once answered."""
        self._draining = True
        for lane in self._lanes.values():
            if lane.frames.open:
                lane.frames.send(Drain())

    @property
    def drained(self) -> bool:
        return all(lane.drained or not lane.frames.open for lane in self._lanes.values())

    def held(self, index: int) -> int:
        """Client connections worker `index` serves itself."""
        lane = self._lanes.get(index)
        return len(lane.connections) if lane is not None else 0

"""Worker side of --direct_http's conversation with the front: the metrics a worker counts (sent as Telemetry,
soon after the first one and whenever the front asks), and the Calls it makes with their Replies."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from server.errors import ServingError, Unavailable
from server.jobs import Job, Result
from server.metrics import Count
from server.workers.messages import Call, HttpCall, HttpReply, Reply, SubmitCall, Telemetry

REPORT_AFTER_S = 0.5  # counts wait at most this long for the next report
CLOSED_AFTER_S = 0.02  # a closed connection frees its place under --max_connections this soon
MAX_PENDING = 1024


class Recorder:
    """The Metrics methods a worker calls, kept as (name, args) and sent to the front as Telemetry."""

    def __init__(self, send: Callable[[Telemetry], None]) -> None:
        self._send = send
        self._pending = Telemetry()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.inflight = Count()

    def answered(self, model: str, protocol: str, status: int, seconds: float) -> None:
        self._add("answered", (model, protocol, status, seconds))

    def rate_limited(self, transport: str) -> None:
        self._add("rate_limited", (transport,))

    def stages(self, model: str, durations: dict[str, float]) -> None:
        self._add("stages", (model, durations))

    def batch(self, model: str, size: int) -> None:
        self._add("batch", (model, size))

    def closed(self, conn_id: int) -> None:
        self._pending.closed.append(conn_id)
        self._schedule(CLOSED_AFTER_S)

    def _add(self, name: str, args: tuple[Any, ...]) -> None:
        self._pending.calls.append((name, args))
        if len(self._pending.calls) >= MAX_PENDING:
            self.flush()
        else:
            self._schedule(REPORT_AFTER_S)

    def _schedule(self, delay: float) -> None:
        """A report within `delay` (a report already due sooner stands: every one is due within REPORT_AFTER_S)."""
        if self._timer is not None and (delay >= REPORT_AFTER_S or self._timer.when() <= self._loop.time() + delay):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Send what was counted since the last report (an empty report too: the front may be waiting for it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        report, self._pending = self._pending, Telemetry()
        report.inflight = self.inflight.value
        self._send(report)


class FrontCalls:
    """Calls to the front, each answered by a Reply with the same id."""

    def __init__(self, send: Callable[[Call], None]) -> None:
        self._send = send
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.closed = False

    async def ask(self, what: SubmitCall | HttpCall) -> Any:
        if self.closed:
            raise Unavailable("server is shutting down")
        call = Call(next(self._ids), what)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call.id] = future
        try:
            self._send(call)
            value = await future
        finally:
            self._waiting.pop(call.id, None)
        if isinstance(value, ServingError):
            raise value
        return value

    def replied(self, reply: Reply) -> None:
        future = self._waiting.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply.value)

    def close(self) -> None:
        """The front is gone: every call waiting gets 503."""
        self.closed = True
        for future in self._waiting.values():
            if not future.done():
                future.set_result(Unavailable("server is shutting down"))


class FrontPool:
    """Another model's workers as seen from a worker: its jobs run through the front (which admits them)."""

    def __init__(self, calls: FrontCalls, model: str) -> None:
        self._calls = calls
        self._model = model

    @property
    def ready(self) -> bool:
        return not self._calls.closed

    def admission(self, budget_s: float) -> None:
        """The front admits the job when it arrives there."""

    async def submit(self, job: Job) -> Result:
        result: Result = await self._calls.ask(SubmitCall(self._model, job))
        return result


async def ask_http(calls: FrontCalls, call: HttpCall) -> HttpReply:
    reply: HttpReply = await calls.ask(call)
    return reply

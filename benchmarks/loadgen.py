"""Load generator, run in its own process: `python -m benchmarks.loadgen SPEC_JSON` prints a JSON result.

Closed loop: `concurrency` connections each send a request as soon as the last answer arrived.
Open loop: requests are scheduled at a fixed rate and latency counts from the scheduled time, so a slow
server cannot slow the arrivals down (no coordinated omission).
HTTP uses pre-encoded request bytes and httptools' C parser, so the generator itself costs little CPU.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httptools

from client_sdk.errors import RETRY_AFTER_MS, error_for
from client_sdk.retry import RetryPolicy
from client_sdk.transport import retry_after


@dataclass
class Spec:
    """One load run."""

    protocol: str  # http | grpc | sdk-image | sdk-image-grpc
    target: str  # host:port
    path: str = "/"  # HTTP path, or the gRPC method
    payload: str = ""  # file with the request body
    content_type: str = "application/octet-stream"
    model: str = "portrait"
    mode: str = "closed"  # closed | open
    concurrency: int = 1
    rate: float = 0.0  # open loop: requests per second
    duration: float = 10.0
    warmup: float = 1.0
    retries: int = 0  # HTTP: send a request refused with 429/503 again, as the SDK's RetryPolicy decides
    deadline: float = 30.0  # HTTP with retries: a request's whole budget in seconds, as the SDK's timeout
    headers: dict[str, str] = field(default_factory=dict)  # HTTP: more request headers
    retry_hint: str = "ms"  # ms: Retry-After-Ms, else Retry-After (as the SDK) | seconds: Retry-After only


@dataclass
class Outcome:
    """What one run measured. Latencies are of successful requests, in seconds."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    elapsed: float = 0.0
    client_cpu_s: float = 0.0
    bytes_unknown: bool = False
    refusals: dict[str, int] = field(default_factory=dict)  # answers that were retried, by status


def summarize(outcome: dict[str, Any]) -> dict[str, Any]:
    """QPS, latency percentiles (ms), errors and bytes per request of one load run."""
    lat = sorted(outcome["latencies"])
    count = len(lat)
    total = count + sum(outcome["errors"].values())

    def pct(q: float) -> float:
        return round(lat[min(count - 1, int(q * count))] * 1000, 2) if count else float("nan")

    return {
        "qps": round(count / outcome["elapsed"], 2) if outcome["elapsed"] else 0.0,
        "p50_ms": round(statistics.median(lat) * 1000, 2) if count else float("nan"),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if count else float("nan"),
        "requests": count,
        "errors": outcome["errors"],
        "bytes_per_request": None
        if outcome.get("bytes_unknown") or not total
        else round((outcome["bytes_sent"] + outcome["bytes_received"]) / total),
        "client_cpu_percent": round(100 * outcome["client_cpu_s"] / outcome["elapsed"], 1) if outcome["elapsed"] else 0,
    }


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, int]] | None = None
        self.size = 0
        self.keep_alive = True
        self.hints: dict[bytes, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.size += len(data)
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in (b"retry-after", b"retry-after-ms"):
            self.hints[name] = value

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful while the message is parsed

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), self.size))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, data: bytes) -> tuple[int, int]:
        assert self.transport is not None
        self.size, self.hints = 0, {}
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class _Client:
    """Sends one request per call on a protocol; returns (status label, bytes received)."""

    def __init__(self, spec: Spec, body: bytes) -> None:
        self.spec = spec
        host, port = spec.target.rsplit(":", 1)
        self.host, self.port = host, int(port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in spec.headers.items())
        head = (f"POST {spec.path} HTTP/1.1\r\nHost: {spec.target}\r\nContent-Type: {spec.content_type}\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.http_request = head + body
        self.body = body
        self.sent = len(self.http_request) if spec.protocol == "http" else len(body)
        self._pool: list[_HttpConnection] = []
        self.policy = RetryPolicy(retries=spec.retries)
        self.refused: list[str] = []  # statuses of answers that were retried, collected by the caller
        self._channel: Any = None
        self._sdk: Any = None

    async def _http_once(self) -> tuple[int, int, float | None]:
        """(status, bytes received, the server's retry hint in seconds) of one HTTP exchange."""
        conn = self._pool.pop() if self._pool else None
        if conn is None or conn.transport is None or conn.transport.is_closing():
            _, conn = await asyncio.get_running_loop().create_connection(_HttpConnection, self.host, self.port)
        status, size = await conn.request(self.http_request)
        if conn.keep_alive:
            self._pool.append(conn)
        else:
            assert conn.transport is not None
            conn.transport.close()
        hints = {k.decode(): v.decode() for k, v in conn.hints.items()}
        if self.spec.retry_hint == "seconds":
            hints.pop(RETRY_AFTER_MS, None)
        return status, size, retry_after(hints)

    async def _http(self) -> tuple[str, int]:
        """One request, sent again on 429/503 as the SDK would (RetryPolicy, within spec.deadline)."""
        deadline = time.perf_counter() + self.spec.deadline
        attempt = 0
        while True:
            status, size, hint = await self._http_once()
            if status not in (429, 503) or not self.spec.retries:
                return str(status), size
            wait = self.policy.wait(error_for("", status, "", hint), attempt, deadline - time.perf_counter())
            if wait is None:
                return str(status), size
            self.refused.append(str(status))
            attempt += 1
            await asyncio.sleep(wait)

    async def _grpc(self) -> tuple[str, int]:
        import grpc

        if self._channel is None:
            limit = 512 * 2**20
            self._channel = grpc.aio.insecure_channel(self.spec.target, options=[
                ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])  # fmt: skip
            self._call = self._channel.unary_unary(self.spec.path, request_serializer=None, response_deserializer=None)
        try:
            reply = await self._call(self.body, timeout=60)
        except grpc.RpcError as exc:
            return exc.code().name, 0
        return "200", len(reply)

    async def _sdk_image(self) -> tuple[str, int]:
        import client_sdk

        if self._sdk is None:
            protocol = "grpc" if self.spec.protocol.endswith("grpc") else "http"
            self._sdk = client_sdk.AsyncSegClient(self.spec.target, model=self.spec.model, protocol=protocol,
                                                  retries=0, timeout=60)  # fmt: skip
        try:
            await self._sdk.segment(self.body)
        except client_sdk.SegServingError as exc:
            return str(exc.status or type(exc).__name__), 0
        return "200", -1  # the SDK does not expose wire bytes

    async def send(self) -> tuple[str, int]:
        if self.spec.protocol == "http":
            return await self._http()
        if self.spec.protocol == "grpc":
            return await self._grpc()
        return await self._sdk_image()


async def _run(spec: Spec) -> Outcome:
    body = Path(spec.payload).read_bytes() if spec.payload else b""
    clients = [_Client(spec, body) for _ in range(max(spec.concurrency, 1))]
    outcome = Outcome()
    measuring = asyncio.Event()
    stop_at = [float("inf")]

    async def one(client: _Client, started: float) -> None:
        try:
            status, size = await client.send()
        except (ConnectionError, OSError) as exc:
            status, size = type(exc).__name__, 0
        refused, client.refused = client.refused, []
        if not measuring.is_set():
            return
        for label in refused:
            outcome.refusals[label] = outcome.refusals.get(label, 0) + 1
        if size < 0:
            outcome.bytes_unknown = True
        outcome.bytes_sent += client.sent
        outcome.bytes_received += max(size, 0)
        if status == "200":
            outcome.latencies.append(time.perf_counter() - started)
        else:
            outcome.errors[status] = outcome.errors.get(status, 0) + 1

    async def closed(client: _Client) -> None:
        while time.perf_counter() < stop_at[0]:
            await one(client, time.perf_counter())

    async def open_loop() -> None:
        """Arrivals every 1/rate s; each takes an idle client (a new one if all are busy)."""
        idle, pending = list(clients), set()

        async def arrival(scheduled: float) -> None:
            client = idle.pop() if idle else _Client(spec, body)
            try:
                await one(client, scheduled)
            finally:
                idle.append(client)

        interval, next_at = 1.0 / spec.rate, time.perf_counter()
        while next_at < stop_at[0]:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(arrival(next_at))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
        if pending:
            await asyncio.wait(pending, timeout=60)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    begin = time.perf_counter()
    stop_at[0] = begin + spec.warmup + spec.duration
    asyncio.get_running_loop().call_later(spec.warmup, measuring.set)
    if spec.mode == "closed":
        await asyncio.gather(*(closed(c) for c in clients))
    else:
        await open_loop()
    outcome.elapsed = time.perf_counter() - begin - spec.warmup
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    outcome.client_cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return outcome


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    outcome = asyncio.run(_run(spec))
    print(json.dumps(asdict(outcome)))


if __name__ == "__main__":
    main()

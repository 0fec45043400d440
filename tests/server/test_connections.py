"""--max_connections: at the cap, idle connections make room for new ones (health probes keep answering with
1,000 idle connections open at a cap of 200); with none idle a new connection gets 503; busy ones are never cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess, start_server

from server.listener import ConnectionTable

CAP = 200
IDLE = 1000


class Conn(asyncio.BaseTransport):
    """A transport that only records being closed (the table needs nothing else)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


# ----- the table -----


def test_at_the_cap_the_longest_idle_connection_makes_room() -> None:
    events: list[str] = []
    table = ConnectionTable(3, grpc_idle_s=30.0, on_event=events.append)
    busy, idle_old, idle_new = Conn(), Conn(), Conn()
    table.admit(busy, lambda: False)
    table.admit(idle_old, lambda: True)
    table.admit(idle_new, lambda: True)
    table.touch(idle_new)  # idle_old has been idle longer
    newcomer = Conn()
    assert table.admit(newcomer, lambda: False)
    assert idle_old.closed and not idle_new.closed and not busy.closed
    assert len(table) == 3 and events == ["shed"]
    assert table.admit(Conn(), lambda: False)  # idle_new goes next
    assert idle_new.closed
    late = Conn()
    assert not table.admit(late, lambda: True)  # all busy: refused, nothing cut
    assert not busy.closed and not newcomer.closed and events == ["shed", "shed", "refused"]
    table.forget(busy)
    assert table.admit(late, lambda: True) and len(table) == 3


def test_a_connection_a_worker_serves_counts_and_is_never_shed() -> None:
    events: list[str] = []
    table = ConnectionTable(2, grpc_idle_s=30.0, on_event=events.append)
    idle = Conn()
    table.admit(idle, lambda: True)
    forget = table.adopt()  # --direct_http: the front cannot see whether it is idle
    assert forget is not None and len(table) == 2
    assert table.adopt() is not None and idle.closed and events == ["shed"]  # room made from the front's idle one
    assert table.adopt() is None and events == ["shed", "refused"]  # the workers' ones are never cut
    forget()
    assert len(table) == 1 and table.admit(Conn(), lambda: False)


def test_a_grpc_connection_is_idle_only_after_a_silence_longer_than_any_call() -> None:
    table = ConnectionTable(None, grpc_idle_s=0.05)
    conn = Conn()
    table.admit(conn, lambda: True)
    assert not table.silent(conn)
    time.sleep(0.06)
    assert table.silent(conn)
    table.touch(conn)  # bytes arrived: a call may be running again
    assert not table.silent(conn)
    uncapped = [Conn() for _ in range(50)]
    assert all(table.admit(c, lambda: False) for c in uncapped) and len(table) == 51  # no cap: never refused


# ----- a server with a cap -----


@pytest.fixture(scope="module")
def capped(module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--max_connections", str(CAP)) as server:
        yield server


def sample(server: ServerProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def keep_alive_get(sock: socket.socket) -> bytes:
    """One GET /health/live on `sock`, leaving the connection open (keep-alive); the response head."""
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return read_head(sock)


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    return data


@contextlib.contextmanager
def sockets(count: int, port: int) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_health_answers_with_a_thousand_idle_connections_open(capped: ServerProcess) -> None:
    shed_before = sample(capped, "segserving_connections_closed_total", reason="shed")
    with sockets(IDLE, capped.port) as idle:
        for sock in idle[-50:]:  # the newest: idle between requests (keep-alive); the rest never spoke
            assert keep_alive_get(sock).startswith(b"HTTP/1.1 200")
        for _ in range(5):
            assert httpx.get(f"{capped.url}/health/ready", timeout=30).status_code == 200
        assert httpx.post(f"{capped.url}/v1/models/portrait/segment", content=b"not an image",
                          timeout=60).status_code == 415  # fmt: skip
        assert sample(capped, "segserving_connections") <= CAP
        assert sample(capped, "segserving_connections_closed_total", reason="shed") - shed_before >= IDLE - CAP
        assert sample(capped, "segserving_connections_closed_total", reason="refused") == 0.0


@pytest.fixture(scope="module")
def tiny_cap(module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--max_connections", "3") as server:
        yield server


def test_busy_connections_are_not_cut_and_a_newcomer_gets_503(tiny_cap: ServerProcess) -> None:
    head = (b"POST /v1/models/portrait/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 16\r\n\r\n")  # fmt: skip
    with sockets(3, tiny_cap.port) as busy:
        for sock in busy:
            sock.sendall(head + b"12345678")  # half the body: each is in the middle of a request
        time.sleep(0.2)  # let the server read the heads
        with socket.create_connection(("127.0.0.1", tiny_cap.port), timeout=30) as newcomer:
            newcomer.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while chunk := newcomer.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"--max_connections 3" in answer and b"retry-after: 1" in answer.lower()
        for sock in busy:  # the busy ones were not cut: each finishes its request and gets its answer
            sock.sendall(b"87654321")
            response = read_head(sock)
            assert response.startswith(b"HTTP/1.1 415"), response
        # now idle between requests, they make room again
        assert httpx.get(f"{tiny_cap.url}/health/live", timeout=30).status_code == 200
    assert sample(tiny_cap, "segserving_connections_closed_total", reason="refused") >= 1.0


def test_connection_cap_flag_errors() -> None:
    from test_start_cli import start_cli

    negative = start_cli("--max_connections", "-5")
    assert negative.returncode == 2 and "--max_connections must be >= 0" in negative.stderr

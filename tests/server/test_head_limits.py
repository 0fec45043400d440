"""The request head is bounded: too many header bytes get 431, a head that trickles in (slowloris) or a
connection that never speaks is closed after --header_timeout_ms; the server keeps serving everyone else."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from servers import ServerProcess, start_server
from test_start_cli import start_cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("head-limits")
    with start_server(tmp, "--thread", "1", "--max_header_bytes", "16384", "--header_timeout_ms", "1500") as srv:
        yield srv


def exchange(server: ServerProcess, chunks: list[bytes], pause: float = 0.0, wait: float = 30.0) -> bytes:
    """Send the chunks (pausing between them), then read until the server closes; returns what it said."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before the client has finished sending
        reply = b""
        while data := sock.recv(65536):
            reply += data
        return reply


def status_and_body(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


def test_headers_over_the_limit_get_431_and_the_server_carries_on(server: ServerProcess) -> None:
    big = b"X-Filler: " + b"a" * 20000 + b"\r\n"
    reply = exchange(server, [b"GET /v1/models HTTP/1.1\r\nHost: t\r\n" + big + b"\r\n"])
    status, body = status_and_body(reply)
    assert status == 431 and body["code"] == "headers_too_large" and "16384" in body["error"]
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_a_head_sent_in_small_pieces_is_counted_too(server: ServerProcess) -> None:
    pieces = [b"GET /v1/models HTTP/1.1\r\nHost: t\r\n"] + [b"X-F%d: %s\r\n" % (i, b"b" * 1000) for i in range(40)]
    status, body = status_and_body(exchange(server, pieces))
    assert status == 431 and body["code"] == "headers_too_large"


def test_heads_under_the_limit_pass_on_one_keep_alive_connection(server: ServerProcess) -> None:
    headers = {f"X-Pad-{i}": "c" * 1000 for i in range(10)}  # ~10 KB a request, 20 KB on the connection
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            assert client.get("/v1/models", headers=headers).status_code == 200


def test_a_trickling_head_is_cut_off_with_408(server: ServerProcess) -> None:
    start = [b"GET /v1/models HTTP/1.1\r\nHost: t\r\n"]
    trickle = [b"X-Slow: %d\r\n" % i for i in range(40)]  # one header every 0.1 s: 4 s, over the 1.5 s limit
    status, body = status_and_body(exchange(server, start + trickle, pause=0.1))
    assert status == 408 and body["code"] == "request_timeout"
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_a_trickling_body_is_cut_off_with_408(server: ServerProcess) -> None:
    head = b"POST /v1/models/portrait/segment HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
    trickle = [b"x"] * 40  # one byte every 0.1 s: 4 s for 40 of the 100 bytes, over the 1.5 s limit
    reply = exchange(server, [head, *trickle], pause=0.1)  # returns once the server closes
    status, body = status_and_body(reply)
    assert status == 408 and body["code"] == "request_timeout" and "request body not received" in body["error"]
    assert b"connection: close" in reply.lower()
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_a_connection_that_never_speaks_is_closed(server: ServerProcess) -> None:
    assert exchange(server, []) == b""  # closed by the server (the 30 s socket timeout would raise instead)


@pytest.mark.parametrize("flag", ["--max_header_bytes", "--header_timeout_ms"])
def test_limit_flags_must_be_positive(flag: str) -> None:
    result = start_cli(flag, "0")
    assert result.returncode == 2 and f"{flag} must be positive" in result.stderr

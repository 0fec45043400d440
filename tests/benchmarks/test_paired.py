"""`benchmarks.paired`: the run order and median of per-round ratios, and the raw HTTP client it times with."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from benchmarks.paired import RawHttp, alternate


class _Echo(BaseHTTPRequestHandler):
    """Answers the body's length (status 200, or 418 for an empty body); closes when the body says so."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers["Content-Type"], body))
        reply = b"x" * 300_000  # larger than one recv: the client must read the whole answer
        self.send_response(200 if body else 418)
        self.send_header("Content-Length", str(len(reply)))
        if body == b"close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Echo.seen.clear()
    yield server
    server.shutdown()
    server.server_close()


def test_raw_http_reads_whole_answers_on_one_keep_alive_connection(echo: ThreadingHTTPServer) -> None:
    client = RawHttp("127.0.0.1", echo.server_address[1], "/v1/models/m/segment", "image/jpeg", b"jpeg bytes")
    assert [client(), client(), client()] == [200, 200, 200]
    assert _Echo.seen == [("/v1/models/m/segment", "image/jpeg", b"jpeg bytes")] * 3
    assert client.sock is not None  # still the same open connection


def test_raw_http_reconnects_after_the_server_closes_and_returns_the_status(echo: ThreadingHTTPServer) -> None:
    port = echo.server_address[1]
    closing = RawHttp("127.0.0.1", port, "/p", "text/plain", b"close")
    assert closing() == 200 and closing.sock is None
    assert closing() == 200  # a new connection
    assert RawHttp("127.0.0.1", port, "/p", "text/plain", b"")() == 418


def test_runs_alternate_a_b_b_a_and_the_ratio_is_the_median_per_round() -> None:
    order: list[str] = []
    a_qps, b_qps = iter([10.0, 30.0, 20.0]), iter([5.0, 10.0, 40.0])

    def run(side: str, values) -> dict[str, float]:
        order.append(side)
        return {"qps": next(values)}

    ticks: list[int] = []
    result = alternate(lambda: run("a", a_qps), lambda: run("b", b_qps), 3, lambda: ticks.append(1))
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert result["round_ratios"] == [2.0, 3.0, 0.5] and result["ratio"] == 2.0
    assert [r["qps"] for r in result["a_runs"]] == [10.0, 30.0, 20.0] and len(ticks) == 6

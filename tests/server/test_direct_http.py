"""--direct_http: inference workers serve the HTTP/1.1 connections the front hands them, answer the inference
routes in-process and relay everything else to the front; gRPC stays with the front. Counted in /metrics and
under --max_connections like any connection; drained on SIGTERM; a worker's death closes its connections."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from overload_support import GRPC_METHOD, sample, wait_for
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Request, Response, Tensor
from segcore.samples import synthetic_image

SEGMENT = "/v1/models/portrait/segment"
KEYS = "alpha-key,beta-key"


def jpeg(height: int = 96, width: int = 128, seed: int = 0) -> bytes:
    return cv2.imencode(".jpg", synthetic_image(height, width, seed))[1].tobytes()


def png_shape(data: bytes) -> tuple[int, ...]:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape


def held(server: ServerProcess, client: httpx.Client | None = None) -> list[int]:
    """How many client connections each worker of portrait serves itself."""
    get = client.get if client is not None else httpx.get
    return [w["connections"] for w in get(f"{server.url}/v1/models/portrait", timeout=30).json()["workers"]]


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two workers serving HTTP, a second model (the same files under another name) behind the front."""
    tmp = tmp_path_factory.mktemp("direct")
    second = f"second={Path(__file__).parents[2] / 'serving_models' / 'portrait' / 'serving_server'}"
    flags = ("--thread", "2", "--direct_http", "--header_timeout_ms", "2000")
    with start_server(tmp, "--model", "portrait", second, *flags) as server:
        yield server


def test_a_keep_alive_connection_is_served_by_one_worker(direct: ServerProcess) -> None:
    with httpx.Client(timeout=30) as client:
        for seed in range(3):
            answer = client.post(f"{direct.url}{SEGMENT}", content=jpeg(seed=seed))
            assert answer.status_code == 200, answer.text
            assert png_shape(answer.content) == (96, 128)
            assert "inference;dur=" in answer.headers["server-timing"] and "date" in answer.headers
        # asked on the same connection: a worker holds it (and the front answered from the worker's relay)
        assert sorted(held(direct, client)) == [0, 1]
    # once closed, only the connection asking is held
    wait_for(lambda: sum(held(direct)) == 1, "the closed connection uncounted")


def test_connections_spread_over_the_workers(direct: ServerProcess) -> None:
    clients = [httpx.Client(timeout=30) for _ in range(4)]
    try:
        for client in clients:
            assert client.post(f"{direct.url}{SEGMENT}", content=jpeg()).status_code == 200
        counts = held(direct, clients[0])
        assert counts == [2, 2], counts
    finally:
        for client in clients:
            client.close()


def test_every_route_answers_on_a_worker_connection(direct: ServerProcess) -> None:
    with httpx.Client(timeout=30) as client:
        assert client.post(f"{direct.url}{SEGMENT}", content=jpeg()).status_code == 200
        assert client.get(f"{direct.url}/health/ready").json()["ready"] is True
        assert client.get(f"{direct.url}/openapi.json").json()["info"]["title"] == "SegServing"
        assert client.get(f"{direct.url}/docs").status_code == 200
        missing = client.get(f"{direct.url}/no/such/route")
        assert missing.status_code == 404
        big = client.post(f"{direct.url}/v1/models", content=b"x" * (2**20 + 1))  # relayed bodies are small
        assert big.status_code == 413 and big.json()["code"] == "too_large"
        # the other model's workers are the front's: the job goes there and back
        other = client.post(f"{direct.url}/v1/models/second/segment", content=jpeg(64, 80))
        assert other.status_code == 200 and png_shape(other.content) == (64, 80)
        unknown = client.post(f"{direct.url}/v1/models/nope/segment", content=jpeg())
        assert unknown.status_code == 404 and "portrait, second" in unknown.json()["error"]
        bad = client.post(f"{direct.url}{SEGMENT}", content=b"not an image")
        assert bad.status_code == 415 and bad.json()["code"] == "unsupported_media_type"
        assert client.post(f"{direct.url}{SEGMENT}", content=jpeg()).status_code == 200  # the worker lives on
        assert sum(held(direct, client)) >= 1


def test_a_request_whose_first_bytes_trickle_in_is_answered_by_the_front(direct: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", direct.port), timeout=30) as sock:
        sock.sendall(b"GE")  # too few bytes to tell HTTP/1.1 from HTTP/2 at first sight
        time.sleep(0.2)
        sock.sendall(b"T /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 200")


def test_a_connection_that_never_speaks_is_closed(direct: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", direct.port), timeout=30) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server, after --header_timeout_ms (2 s here)
        assert time.monotonic() - started >= 1.5


def test_a_workers_requests_are_counted_in_the_fronts_metrics(direct: ServerProcess) -> None:
    before = sample(direct, "segserving_requests_total", model="portrait", protocol="image", status="200") or 0.0
    batches = sample(direct, "segserving_batch_size_count", model="portrait") or 0.0
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            assert client.post(f"{direct.url}{SEGMENT}", content=jpeg()).status_code == 200
    # read at once on a new connection, maybe served by the other worker: the front collects from both first
    assert sample(direct, "segserving_requests_total", model="portrait", protocol="image", status="200") == before + 3
    assert sample(direct, "segserving_batch_size_count", model="portrait") == batches + 3
    stats = httpx.get(f"{direct.url}/v2/models/portrait/stats", timeout=30).json()["model_stats"][0]
    assert stats["inference_stats"]["compute_infer"]["count"] >= 3


def test_grpc_stays_with_the_front(direct: ServerProcess) -> None:
    values = np.random.default_rng(1).random(3 * 256 * 256, dtype=np.float32)
    tensor = Tensor(elem_type=1, shape=[1, 3, 256, 256], name="image", alias_name="image", float_data=values)
    request = Request(tensor=[tensor], fetch_var_names=["fetch_name_0"]).SerializeToString()
    with grpc.insecure_channel(direct.address) as channel:
        answer = Response.FromString(channel.unary_unary(GRPC_METHOD)(request, timeout=30))
    assert answer.err_no == 0 and list(answer.outputs[0].tensor[0].shape)[-2:] == [256, 256]


def test_api_keys_are_checked_by_the_worker(tmp_path: Path) -> None:
    keys = {"SEGSERVING_API_KEYS": KEYS}
    with start_server(tmp_path, "--thread", "1", "--direct_http", env=keys) as server, httpx.Client(timeout=30) as c:
        refused = c.post(f"{server.url}{SEGMENT}", content=jpeg())
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert c.post(f"{server.url}{SEGMENT}", content=jpeg(), headers={"X-API-Key": "beta-key"}).status_code == 200
        assert c.get(f"{server.url}/v1/models").status_code == 401  # relayed routes too
        assert c.get(f"{server.url}/health/live").status_code == 200
        info = c.get(f"{server.url}/v1/models/portrait", headers={"X-API-Key": "alpha-key"})
        assert info.json()["workers"][0]["connections"] == 1


def test_connections_a_worker_holds_count_against_the_cap(tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--direct_http", "--max_connections", "2") as server:
        first, second = httpx.Client(timeout=30), httpx.Client(timeout=30)
        try:
            for client in (first, second):
                assert client.post(f"{server.url}{SEGMENT}", content=jpeg()).status_code == 200
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as third:
                third.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert third.recv(4096).startswith(b"HTTP/1.1 503")
            first.close()  # the worker reports it closed, and its place is free again
            wait_for(lambda: _live(server), "a place under the cap")
        finally:
            first.close()
            second.close()


def _live(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_sigterm_answers_the_requests_in_hand_then_exits_zero(tmp_path: Path) -> None:
    heavy = cv2.imencode(".jpg", synthetic_image(3000, 3000, 3))[1].tobytes()
    with start_server(tmp_path, "--thread", "1", "--direct_http") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as busy:
            _post(busy, heavy)
            time.sleep(0.3)  # the worker is running it
            server.process.send_signal(signal.SIGTERM)
            answer = _read_all(busy)  # to the end: the worker closes the connection once it has answered
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert server.process.wait(timeout=60) == 0, server.log()[-3000:]


def test_sigterm_answers_a_request_that_waited_in_a_keep_alive_connection(tmp_path: Path) -> None:
    heavy = cv2.imencode(".jpg", synthetic_image(3000, 3000, 4))[1].tobytes()
    with start_server(tmp_path, "--thread", "1", "--direct_http") as server:
        waiting = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        busy = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        with waiting, busy:
            waiting.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(waiting).startswith(b"HTTP/1.1 200")  # held by the worker, idle now
            _post(busy, heavy)
            time.sleep(0.3)  # the worker is running the heavy one; the next request waits unread in its socket
            _post(waiting, jpeg())
            server.process.send_signal(signal.SIGTERM)
            assert _read_all(busy).startswith(b"HTTP/1.1 200")
            assert _read_all(waiting).startswith(b"HTTP/1.1 200")  # sent before the drain: answered, then closed
        assert server.process.wait(timeout=60) == 0, server.log()[-3000:]


def _post(sock: socket.socket, image: bytes) -> None:
    sock.sendall(f"POST {SEGMENT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(image)}\r\n\r\n".encode() + image)


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body), leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_worker_that_dies_closes_its_connections_and_comes_back(tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--direct_http") as server:
        with httpx.Client(timeout=30) as client:
            assert client.post(f"{server.url}{SEGMENT}", content=jpeg()).status_code == 200
            (worker,) = client.get(f"{server.url}/v1/models/portrait").json()["workers"]
            os.kill(worker["pid"], signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                client.post(f"{server.url}{SEGMENT}", content=jpeg())
        wait_for(lambda: httpx.get(f"{server.url}/health/ready", timeout=30).status_code == 200, "the new worker")
        assert httpx.post(f"{server.url}{SEGMENT}", content=jpeg(), timeout=30).status_code == 200
        assert sample(server, "segserving_worker_restarts_total", model="portrait") == 1.0


def test_a_rate_limit_keeps_connections_in_the_front(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.cli import build_parser, settings_from_args

    monkeypatch.setenv("SEGSERVING_API_KEYS", KEYS)
    parser = build_parser()
    limited = settings_from_args(parser.parse_args(["--direct_http", "--rate_limit", "5"]), parser)
    plain = settings_from_args(parser.parse_args(["--direct_http"]), parser)
    default = settings_from_args(parser.parse_args([]), parser)
    assert plain.direct_http and not limited.direct_http and not default.direct_http

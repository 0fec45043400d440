"""Overload end to end: full queue (429 / RESOURCE_EXHAUSTED), deadlines (504 / DEADLINE_EXCEEDED), not ready
while loading (503 / UNAVAILABLE) and bodies over --max_body_size (413), against real server processes."""

from __future__ import annotations

import gzip
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Request, Response, Tensor

SEGMENT = "/v1/models/portrait/segment"
PADDLE = "/GeneralModelService/inference"
V2 = "/v2/models/portrait/infer"
GRPC_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
CLIENT_TIMEOUT = 120.0
BODY_LIMIT = 65536


# ----- helpers -----


def smooth_jpeg(side: int) -> bytes:
    """A large photo-like JPEG: small to send, costly to decode and resize, so it keeps a worker busy."""
    small = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC))[1].tobytes()


def small_png() -> bytes:
    return cv2.imencode(".png", np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))[1].tobytes()


def tensor_request() -> Request:
    """A GeneralModelService Request for the portrait model: one 1x3x256x256 float32 image."""
    values = np.random.default_rng(2).random(3 * 256 * 256, dtype=np.float32)
    tensor = Tensor(elem_type=1, shape=[1, 3, 256, 256], name="image", alias_name="image", float_data=values)
    return Request(tensor=[tensor], fetch_var_names=["fetch_name_0"])


def tensor_json(request: Request) -> bytes:
    t = request.tensor[0]
    entry = {"float_data": list(t.float_data), "elem_type": 1, "shape": list(t.shape), "name": t.name,
             "alias_name": t.alias_name}  # fmt: skip
    return orjson.dumps({"tensor": [entry], "fetch_var_names": list(request.fetch_var_names)})


def v2_json() -> bytes:
    data = np.zeros(3 * 256 * 256, np.float32).tolist()
    return orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 256, 256], "data": data}]})


def grpc_call(server: ServerProcess, request: Request, timeout: float | None = CLIENT_TIMEOUT) -> bytes:
    """One GeneralModelService/inference call; grpc.RpcError on a non-OK status."""
    with grpc.insecure_channel(server.address) as channel:
        return channel.unary_unary(GRPC_METHOD)(request.SerializeToString(), timeout=timeout)


def grpc_error(server: ServerProcess, request: Request, timeout: float | None = CLIENT_TIMEOUT) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        grpc_call(server, request, timeout)
    return info.value


def sample(server: ServerProcess, name: str, **labels: str) -> float | None:
    """The value of one /metrics sample, or None if absent."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def answered(server: ServerProcess, protocol: str, status: int) -> float:
    value = sample(server, "segserving_requests_total", model="portrait", protocol=protocol, status=str(status))
    return value or 0.0


def wait_for(condition, what: str, attempts: int = 600, pause: float = 0.02) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


def post(server: ServerProcess, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=CLIENT_TIMEOUT)


def raw_exchange(server: ServerProcess, head: bytes, *chunks: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `head` and `chunks` over a plain socket (nothing more: no end of body), then read one response.
    A server that waited for the rest of the body would leave this to the socket timeout and fail the test."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            received = sock.recv(65536)
            assert received, f"connection closed before a response: {data!r}"
            data += received
        header_block, body = data.split(b"\r\n\r\n", 1)
        status_line, *lines = header_block.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers["content-length"])
        while len(body) < length:
            received = sock.recv(65536)
            assert received, "connection closed in the middle of the response body"
            body += received
    return int(status_line.split()[1]), headers, body[:length]


# ----- 429: the queue is full -----


@pytest.fixture(scope="module")
def queue_server(module_tmp: Path):
    flags = ("--thread", "1", "--max_queue", "1", "--batch_size", "1", "--request_timeout_ms", "60000")
    with start_server(module_tmp, *flags) as server:
        yield server


@pytest.fixture(scope="module")
def heavy() -> bytes:
    return smooth_jpeg(6000)


def test_full_queue_answers_429_with_retry_after(queue_server: ServerProcess, heavy: bytes) -> None:
    server = queue_server
    request = tensor_request()
    with ThreadPoolExecutor(3) as pool:
        # one runs, one waits in the worker's socket (pipeline depth 2), one fills the queue of 1
        blockers = [pool.submit(post, server, SEGMENT, heavy) for _ in range(3)]
        wait_for(lambda: sample(server, "segserving_queue_depth", model="portrait") == 1.0, "a full queue")
        image = post(server, SEGMENT, small_png())
        paddle_json = post(server, PADDLE, tensor_json(request), **{"content-type": "application/json"})
        error = grpc_error(server, request)
        statuses = [f.result().status_code for f in blockers]
    assert image.status_code == 429, image.text
    assert int(image.headers["retry-after"]) >= 1
    assert "queue is full" in image.json()["error"]
    assert paddle_json.status_code == 429
    assert int(paddle_json.headers["retry-after"]) >= 1
    assert paddle_json.json()["err_no"] == 429 and "queue is full" in paddle_json.json()["err_msg"]
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in error.details()
    assert statuses == [200, 200, 200], "work accepted before the queue filled must still complete"
    assert answered(server, "image", 429) == 1.0
    assert answered(server, "http-json", 429) == 1.0
    assert answered(server, "grpc", 429) == 1.0
    # the queue drained: the same requests are served again
    assert post(server, SEGMENT, small_png()).status_code == 200
    assert Response.FromString(grpc_call(server, request)).err_no == 0


def test_grpc_client_deadline_ends_the_call(queue_server: ServerProcess, heavy: bytes) -> None:
    server = queue_server
    request = tensor_request()
    before = {status: answered(server, "grpc", status) for status in (200, 500, 504)}
    with ThreadPoolExecutor(2) as pool:
        blockers = [pool.submit(post, server, SEGMENT, heavy) for _ in range(2)]
        # both in the worker (running and next); a third request waits in the queue behind them
        wait_for(lambda: sample(server, "segserving_inflight_requests") == 2.0, "two requests in flight")
        error = grpc_error(server, request, timeout=0.5)
        statuses = [f.result().status_code for f in blockers]
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert statuses == [200, 200]
    after = {status: answered(server, "grpc", status) for status in (200, 500, 504)}
    assert after[200] == before[200], "the expired call was answered as a success"
    assert after[500] + after[504] == before[500] + before[504] + 1
    assert sample(server, "segserving_queue_depth", model="portrait") == 0.0
    assert Response.FromString(grpc_call(server, request)).err_no == 0


# ----- 504: past the deadline -----


@pytest.fixture(scope="module")
def deadline_server(module_tmp: Path):
    """Requests have 1 ms: no request through a worker process fits (the port still answers /health)."""
    with start_server(module_tmp, "--thread", "1", "--request_timeout_ms", "1") as server:
        yield server


def test_request_past_its_deadline_answers_504(deadline_server: ServerProcess) -> None:
    server = deadline_server
    image = post(server, SEGMENT, smooth_jpeg(2000))
    assert image.status_code == 504, image.text
    assert "deadline" in image.json()["error"]
    paddle_json = post(server, PADDLE, tensor_json(tensor_request()), **{"content-type": "application/json"})
    assert paddle_json.status_code == 504
    assert paddle_json.json()["err_no"] == 504 and "deadline" in paddle_json.json()["err_msg"]
    proto = post(server, PADDLE, tensor_request().SerializeToString(), **{"content-type": "application/proto"})
    assert proto.status_code == 504
    assert Response.FromString(proto.content).err_no == 504
    v2 = post(server, V2, v2_json(), **{"content-type": "application/json"})
    assert v2.status_code == 504 and "deadline" in v2.json()["error"]
    assert answered(server, "image", 504) == 1.0
    assert answered(server, "http-json", 504) == 1.0
    assert answered(server, "http-proto", 504) == 1.0
    assert answered(server, "kserve-v2", 504) == 1.0


def test_grpc_past_the_server_deadline_is_deadline_exceeded(deadline_server: ServerProcess) -> None:
    error = grpc_error(deadline_server, tensor_request(), timeout=CLIENT_TIMEOUT)  # the client would wait 120 s
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "request deadline exceeded" in error.details()  # the server's message: the server gave up, not the client
    assert answered(deadline_server, "grpc", 504) == 1.0
    assert httpx.get(f"{deadline_server.url}/health/ready").status_code == 200
    log = deadline_server.log()
    assert " ERROR " not in log, "a request past its deadline is not a server error: " + log[-2000:]


# ----- 503: not ready while loading -----


def test_not_ready_while_models_load(tmp_path: Path) -> None:
    image, request = small_png(), tensor_request()
    # two Paddle Inference workers load for seconds after the port opens
    with start_server(tmp_path, "--thread", "2", "--engine", "paddle", wait=False) as server:
        seen: list[int] = []
        checked = False
        for _ in range(1200):
            try:
                health = httpx.get(f"{server.url}/health/ready", timeout=5)
            except httpx.TransportError:
                assert server.process.poll() is None, server.log()[-3000:]
                time.sleep(0.02)
                continue
            seen.append(health.status_code)
            if health.status_code == 200:
                break
            assert health.status_code == 503
            assert health.json() == {"ready": False, "draining": False, "models": {"portrait": False}}
            response = post(server, SEGMENT, image)
            error = grpc_error(server, request)
            still_loading = httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 503
            if still_loading:  # not ready before and after: both requests came in while loading
                assert response.status_code == 503, response.text
                assert "not ready" in response.json()["error"]
                assert int(response.headers["retry-after"]) >= 1
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "not ready" in error.details()  # the server's answer, not a failed connection
                checked = True
                break
        assert checked, f"never caught the server loading: {seen}"
        seen += server.wait_ready()
        assert seen[0] == 503 and seen[-1] == 200, seen
        live = httpx.get(f"{server.url}/health/live")
        assert live.status_code == 200
        assert post(server, SEGMENT, image).status_code == 200
        assert Response.FromString(grpc_call(server, request)).err_no == 0


# ----- 413: bodies over --max_body_size -----


@pytest.fixture(scope="module")
def body_server(module_tmp: Path):
    flags = ("--thread", "1", "--max_body_size", str(BODY_LIMIT), "--request_timeout_ms", "60000")
    with start_server(module_tmp, *flags) as server:
        yield server


def head(path: str, content_type: str, framing: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


DECLARED = [(SEGMENT, "image/jpeg"), (PADDLE, "application/json"), (V2, "application/json"),
            (SEGMENT, "multipart/form-data; boundary=xyz")]  # fmt: skip
CHUNKED = [(SEGMENT, "image/jpeg"), (PADDLE, "application/json"), (PADDLE, "application/proto"),
           (V2, "application/json")]  # fmt: skip


def limit_message(body: bytes) -> str:
    doc = orjson.loads(body)
    return doc.get("error") or doc.get("err_msg")


@pytest.mark.parametrize(("path", "content_type"), DECLARED)
def test_declared_length_over_the_limit_is_refused_unread(body_server: ServerProcess, path: str, content_type: str):
    framing = f"Content-Length: {50 * 2**30}"  # 50 GiB declared, 9 bytes sent
    status, _, body = raw_exchange(body_server, head(path, content_type, framing), b"too short")
    assert status == 413
    assert f"limit of {BODY_LIMIT} bytes" in limit_message(body)
    assert "--max_body_size" in limit_message(body)


def test_declared_length_over_the_limit_proto(body_server: ServerProcess) -> None:
    framing = f"Content-Length: {BODY_LIMIT + 1}"
    status, headers, body = raw_exchange(body_server, head(PADDLE, "application/proto", framing), b"\x0a\x00")
    assert status == 413
    assert headers["content-type"] == "application/proto"
    response = Response.FromString(body)
    assert response.err_no == 413 and "--max_body_size" in response.err_msg


@pytest.mark.parametrize(("path", "content_type"), CHUNKED)
def test_chunked_body_over_the_limit_is_refused(body_server: ServerProcess, path: str, content_type: str) -> None:
    chunk = b"a" * 40_000
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    # three chunks (120 kB) and no terminating chunk: the server must stop at the limit, not at the end
    status, _, body = raw_exchange(body_server, head(path, content_type, "Transfer-Encoding: chunked"), *[framed] * 3)
    assert status == 413
    if content_type == "application/proto":
        assert Response.FromString(body).err_no == 413
    else:
        assert f"limit of {BODY_LIMIT} bytes" in limit_message(body)


@pytest.mark.parametrize(
    ("path", "content_type"), [(SEGMENT, "image/png"), (PADDLE, "application/json"), (V2, "application/json")]
)
def test_gzip_body_inflating_past_the_limit_is_refused(body_server: ServerProcess, path: str, content_type: str):
    bomb = gzip.compress(b" " * (16 * BODY_LIMIT))
    assert len(bomb) < BODY_LIMIT
    response = post(body_server, path, bomb, **{"content-type": content_type, "content-encoding": "gzip"})
    assert response.status_code == 413
    assert "gzip body inflates past" in limit_message(response.content)
    assert f"{BODY_LIMIT} bytes" in limit_message(response.content)


def test_grpc_message_over_the_limit_is_resource_exhausted(body_server: ServerProcess) -> None:
    error = grpc_error(body_server, tensor_request())  # 786 kB of floats
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(BODY_LIMIT) in error.details()


def test_bodies_within_the_limit_are_still_served(body_server: ServerProcess) -> None:
    image = small_png()
    assert len(image) < BODY_LIMIT
    assert post(body_server, SEGMENT, image).status_code == 200
    gzipped = gzip.compress(image)
    response = post(body_server, SEGMENT, gzipped, **{"content-type": "image/png", "content-encoding": "gzip"})
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG")

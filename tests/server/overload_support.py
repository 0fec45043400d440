"""What the overload and body-limit tests share: request bodies, raw exchanges, metrics samples, a frozen worker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess

from segcore.proto.general_model_service_pb2 import Request, Tensor

SEGMENT = "/v1/models/portrait/segment"
PADDLE = "/GeneralModelService/inference"
V2 = "/v2/models/portrait/infer"
GRPC_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
CLIENT_TIMEOUT = 120.0


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
    """Poll `condition` a bounded number of times."""
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


def worker_pid(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.url}/v1/models/portrait", timeout=30).json()["workers"][0]["pid"])


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The worker process frozen (SIGSTOP) for the block: whatever reaches it stays queued or in flight."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def head(path: str, content_type: str, framing: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()

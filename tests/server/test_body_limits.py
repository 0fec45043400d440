"""Bodies over --max_body_size (413): declared, chunked, gzip-inflated, over gRPC, against a real server."""

from __future__ import annotations

import gzip
from pathlib import Path

import grpc
import orjson
import pytest
from overload_support import (
    PADDLE,
    SEGMENT,
    V2,
    grpc_error,
    head,
    post,
    raw_exchange,
    small_png,
    tensor_request,
)
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Response

BODY_LIMIT = 65536


@pytest.fixture(scope="module")
def body_server(module_tmp: Path):
    flags = ("--thread", "1", "--max_body_size", str(BODY_LIMIT), "--request_timeout_ms", "60000")
    with start_server(module_tmp, *flags) as server:
        yield server


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

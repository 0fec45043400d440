"""Errors are typed: every JSON error body carries a stable `code` beside the message, gRPC failures carry it in
the trailing metadata, and transport facts never come from the caller's query options."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import orjson
import pytest
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Request, Tensor
from segcore.proto.segmentation_pb2 import SegmentRequest

SEGMENT = "/v1/models/portrait/segment"
PADDLE = "/GeneralModelService/inference"
PADDLE_GRPC = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
SEGMENT_GRPC = "/segserving.v1.Segmentation/Segment"
STATUS_CODES = {400: "invalid_input", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                415: "unsupported_media_type", 422: "unprocessable"}  # fmt: skip


@pytest.fixture(scope="module")
def server(module_tmp: Path):
    with start_server(
        module_tmp, "--thread", "1", "--max_body_size", "16000000", "--max_image_pixels", "100000"
    ) as srv:
        yield srv


def png(height: int = 48, width: int = 64) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def paddle_json(log_id: int = 3) -> bytes:
    data = np.random.default_rng(1).random((1, 3, 256, 256), dtype=np.float32)
    tensor = {"float_data": data.ravel().tolist(), "shape": [1, 3, 256, 256], "elem_type": 1, "name": "image"}
    return orjson.dumps({"tensor": [tensor], "fetch_var_names": [], "log_id": log_id})


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [("POST", SEGMENT, b"not an image", 415), ("POST", SEGMENT, b"", 400), ("POST", SEGMENT, b"x" * 16_000_001, 413),
     ("POST", SEGMENT, png(400, 400), 413), ("POST", "/v1/models/nosuch/segment", png(), 404),
     ("GET", SEGMENT, b"", 405), ("POST", "/v2/models/portrait/infer", b"{", 400),
     ("POST", "/v1/id-photo", png(), 422), ("POST", f"{SEGMENT}?output=nope", png(), 400),
     ("POST", "/v1/id-photo?white_balance=maybe", png(), 400), ("POST", "/v1/id-photo?brightness=2", png(), 400),
     ("GET", "/v1/models/nosuch", b"", 404), ("GET", "/v2/models/nosuch", b"", 404)],
)  # fmt: skip
def test_json_error_bodies_carry_the_code_of_their_status(server: ServerProcess, method: str, path: str, body: bytes,
                                                          status: int) -> None:  # fmt: skip
    reply = httpx.request(method, f"{server.url}{path}", content=body or None, timeout=60)
    assert reply.status_code == status, reply.text[:300]
    doc = reply.json()
    assert doc["code"] == STATUS_CODES[status] and doc["error"]
    assert set(doc) == {"error", "code"}


def test_paddle_json_error_has_err_no_and_the_common_fields(server: ServerProcess) -> None:
    reply = httpx.post(f"{server.url}{PADDLE}", content=b'{"tensor": [{"name": "nope"}]}', timeout=60)
    assert reply.status_code == 400
    doc = reply.json()
    assert doc["err_no"] == 400 and doc["code"] == "invalid_input" and doc["error"] == doc["err_msg"]


def grpc_failure(server: ServerProcess, method: str, message: bytes,
                 metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:  # fmt: skip
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method)(message, timeout=60, metadata=metadata)
    return info.value


@pytest.mark.parametrize(
    ("method", "message", "metadata", "status", "code"),
    [(SEGMENT_GRPC, SegmentRequest(image=b"not an image").SerializeToString(), (), grpc.StatusCode.INVALID_ARGUMENT,
      "unsupported_media_type"),
     (SEGMENT_GRPC, SegmentRequest(image=png(400, 400)).SerializeToString(), (), grpc.StatusCode.RESOURCE_EXHAUSTED,
      "too_large"),
     (SEGMENT_GRPC, SegmentRequest(model="nosuch", image=png()).SerializeToString(), (), grpc.StatusCode.NOT_FOUND,
      "not_found"),
     (SEGMENT_GRPC, b"\xff\xff", (), grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
     (PADDLE_GRPC, Request(tensor=[Tensor(name="nope")]).SerializeToString(), (), grpc.StatusCode.INVALID_ARGUMENT,
      "invalid_input"),
     (PADDLE_GRPC, Request().SerializeToString(), (("model", "nosuch"),), grpc.StatusCode.NOT_FOUND, "not_found")],
)  # fmt: skip
def test_grpc_failures_carry_the_code_in_trailing_metadata(server: ServerProcess, method: str, message: bytes,
                                                           metadata: tuple[tuple[str, str], ...],
                                                           status: grpc.StatusCode, code: str) -> None:  # fmt: skip
    error = grpc_failure(server, method, message, metadata)
    assert error.code() == status, error.details()
    assert dict(error.trailing_metadata())["segserving-error-code"] == code


def test_a_query_option_cannot_switch_gzip_decoding(server: ServerProcess) -> None:
    """Only Content-Encoding says the body is gzip: `?_gzip_request=1` is an ordinary (unknown) option."""
    plain = httpx.post(f"{server.url}{PADDLE}", content=paddle_json(), timeout=60)
    assert plain.status_code == 200, plain.text[:300]
    # the Paddle route reads no query options: the same answer, the body not taken for gzip
    same = httpx.post(f"{server.url}{PADDLE}?_gzip_request=1&_gzip_response=1", content=paddle_json(), timeout=60,
                      headers={"Accept-Encoding": "identity"})  # fmt: skip
    assert same.status_code == 200 and "content-encoding" not in same.headers
    assert orjson.loads(same.content)["outputs"] == orjson.loads(plain.content)["outputs"]
    # the image route refuses options it does not know, naming them
    refused = httpx.post(f"{server.url}{SEGMENT}?_gzip_request=1", content=png(), timeout=60)
    assert refused.status_code == 400 and "_gzip_request" in refused.json()["error"]
    # while the header does decompress
    zipped = httpx.post(f"{server.url}{PADDLE}", content=gzip.compress(paddle_json()), timeout=60,
                        headers={"Content-Encoding": "gzip"})  # fmt: skip
    assert (
        zipped.status_code == 200 and orjson.loads(zipped.content)["outputs"] == orjson.loads(plain.content)["outputs"]
    )

"""Open Inference Protocol codecs without a server: binary tensor data, BYTES elements, and the 400s that name
what is wrong with a malformed request (the conformance tests with Triton's client are in test_oip_conformance)."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from segcore.proto import oip
from server.codecs import kserve, oip_grpc
from server.codecs.oip_tensors import Tensor, from_raw, to_raw
from server.errors import InvalidInput


def binary_request(header: dict, data: bytes) -> tuple[bytes, int]:
    head = orjson.dumps(header)
    return head + data, len(head)


def test_binary_inputs_and_outputs_round_trip() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    words = [b"ab", b"", b"\xff" * 3]
    raw_words = b"".join(struct.pack("<I", len(w)) + w for w in words)
    header = {"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [3, 4], "parameters": {"binary_data_size": 48}},
        {"name": "w", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": len(raw_words)}},
        {"name": "j", "datatype": "INT64", "shape": [2], "data": [1, 2]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "z"}], "id": "r1"}  # fmt: skip
    body, length = binary_request(header, array.tobytes() + raw_words)
    request = kserve.parse_request("m", body, length)
    x, w, j = request.inputs
    np.testing.assert_array_equal(x.data, array)
    assert w.data == words and j.data.tolist() == [1, 2]
    outputs = [Tensor("y", "FP32", [3, 4], array), Tensor("z", "INT64", [2], np.array([5, 6]))]
    reply, content_type, headers = kserve.response(request, outputs)
    size = int(headers[kserve.HEADER_LENGTH])
    doc = orjson.loads(reply[:size])
    assert content_type == "application/octet-stream" and doc["id"] == "r1"
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 48} and doc["outputs"][1]["data"] == [5, 6]
    np.testing.assert_array_equal(np.frombuffer(reply[size:], np.float32).reshape(3, 4), array)


@pytest.mark.parametrize(("header", "data", "length", "problem"), [
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 16}}]},
     bytes(8), None, "runs past the binary data"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}]},
     bytes(12), None, "not claimed by any input"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "parameters": {"binary_data_size": 8}}]},
     bytes(8), None, "do not fill shape"),
    ({"inputs": [{"name": "x", "datatype": "BF16", "shape": [1], "data": [1]}]}, b"", None, "BF16"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}, b"", None, "neither 'data'"),
    ({"inputs": []}, b"", 10_000, "does not fit a body"),
])  # fmt: skip
def test_malformed_binary_requests_are_400(header: dict, data: bytes, length: int | None, problem: str) -> None:
    body, real_length = binary_request(header, data)
    with pytest.raises(InvalidInput, match=problem):
        kserve.parse_request("m", body, real_length if length is None else length)


@pytest.mark.parametrize(("raw", "problem"), [
    (struct.pack("<I", 5) + b"abc", "runs past the end"),
    (struct.pack("<I", 1) + b"a" + b"zz", "left over"),
    (b"\x01\x00", "ends before element 1"),
])  # fmt: skip
def test_malformed_bytes_elements_are_400(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        from_raw("w", "BYTES", [1], raw)


def test_grpc_raw_and_typed_contents() -> None:
    array = np.array([[1.5, -2.0]], np.float32)
    message = oip.ModelInferRequest(model_name="m", id="q")
    entry = message.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    entry.contents.fp32_contents.extend(array.ravel().tolist())
    request = oip_grpc.parse_request(message.SerializeToString())
    np.testing.assert_array_equal(request.inputs[0].data, array)
    message.raw_input_contents.append(to_raw(Tensor("x", "FP32", [1, 2], array)))
    np.testing.assert_array_equal(oip_grpc.parse_request(message.SerializeToString()).inputs[0].data, array)
    message.raw_input_contents.append(b"extra")
    with pytest.raises(InvalidInput, match="2 raw_input_contents for 1 inputs"):
        oip_grpc.parse_request(message.SerializeToString())
    reply = oip.ModelInferResponse.FromString(oip_grpc.response(request, [Tensor("y", "FP32", [1, 2], array)]))
    assert (reply.model_name, reply.id, list(reply.outputs[0].shape)) == ("m", "q", [1, 2])
    np.testing.assert_array_equal(np.frombuffer(reply.raw_output_contents[0], np.float32), array.ravel())
    with pytest.raises(InvalidInput, match="not a ModelInferRequest"):
        oip_grpc.parse_request(b"\xff\xff\xff")

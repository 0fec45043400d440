"""The Open Inference Protocol with Triton's own client (tritonclient.http and tritonclient.grpc), unchanged,
against the server's one port: every call, JSON and binary tensors, encoded-image inputs, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from helpers import ROOT
from servers import ServerProcess, start_server
from tritonclient.utils import InferenceServerException

from client_sdk import ServingClient

MODEL = "portrait"
FEED, FETCH = "image", "fetch_name_0"
RNG = np.random.default_rng(7)
BATCH = RNG.random((2, 3, 256, 256), dtype=np.float32)


@pytest.fixture(scope="module")
def server(module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--model", MODEL, "--thread", "1") as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> thttp.InferenceServerClient:
    return thttp.InferenceServerClient(server.address)


@pytest.fixture(scope="module")
def grpc(server: ServerProcess) -> Iterator[tgrpc.InferenceServerClient]:
    client = tgrpc.InferenceServerClient(server.address)
    yield client
    client.close()


def photo(seed: int, size: tuple[int, int] = (90, 120)) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    cv2.circle(image, (size[1] // 2, size[0] // 2), min(size) // 3, (200, 170, 150), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


# ----- health and metadata -----


def test_health_and_server_metadata(http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient) -> None:
    for client in (http, grpc):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "1")
    about = http.get_server_metadata()
    assert about["name"] == "segserving" and "binary_tensor_data" in about["extensions"]
    assert "binary_tensor_data" in grpc.get_server_metadata().extensions


def test_model_metadata_and_config(http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient) -> None:
    meta = http.get_model_metadata(MODEL, "1")
    assert meta["inputs"] == [{"name": FEED, "datatype": "FP32", "shape": [-1, 3, 256, 256]}]
    assert meta["outputs"] == [{"name": FETCH, "datatype": "FP32", "shape": [-1, 1, 256, 256]}]
    over_grpc = grpc.get_model_metadata(MODEL)
    assert over_grpc.name == MODEL and list(over_grpc.inputs[0].shape) == [-1, 3, 256, 256]
    config = http.get_model_config(MODEL)
    assert config["max_batch_size"] == 8 and config["input"][0]["dims"] == [3, 256, 256]
    assert config["input"][0]["data_type"] == "TYPE_FP32" and config["instance_group"][0]["count"] == 1
    grpc_config = grpc.get_model_config(MODEL).config
    assert grpc_config.name == MODEL and grpc_config.max_batch_size == 8
    assert list(grpc_config.output[0].dims) == [1, 256, 256]


def test_repository_index(http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient) -> None:
    assert http.get_model_repository_index() == [{"name": MODEL, "version": "1", "state": "READY", "reason": ""}]
    (entry,) = grpc.get_model_repository_index().models
    assert (entry.name, entry.state) == (MODEL, "READY")


# ----- tensors -----


def _http_infer(client: thttp.InferenceServerClient, binary: bool) -> np.ndarray:
    tensor = thttp.InferInput(FEED, list(BATCH.shape), "FP32")
    tensor.set_data_from_numpy(BATCH, binary_data=binary)
    result = client.infer(MODEL, [tensor], outputs=[thttp.InferRequestedOutput(FETCH, binary_data=binary)])
    return result.as_numpy(FETCH)


def _grpc_infer(client: tgrpc.InferenceServerClient) -> np.ndarray:
    tensor = tgrpc.InferInput(FEED, list(BATCH.shape), "FP32")
    tensor.set_data_from_numpy(BATCH)
    return client.infer(MODEL, [tensor], outputs=[tgrpc.InferRequestedOutput(FETCH)]).as_numpy(FETCH)


def test_json_binary_grpc_and_paddle_serving_agree(
    http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient, server: ServerProcess
) -> None:
    binary, json_, over_grpc = _http_infer(http, True), _http_infer(http, False), _grpc_infer(grpc)
    assert binary.shape == (2, 1, 256, 256) and binary.dtype == np.float32
    np.testing.assert_allclose(json_, binary, atol=1e-5)
    np.testing.assert_array_equal(over_grpc, binary)
    with ServingClient(retries=0) as paddle:
        paddle.load_client_config(ROOT / "serving_models" / MODEL / "serving_client")
        paddle.connect(server.address)
        reference = paddle.predict({FEED: BATCH}, fetch=[FETCH], batch=True)[FETCH]
    np.testing.assert_allclose(binary, reference, atol=1e-5)


def test_stream_infer(grpc: tgrpc.InferenceServerClient) -> None:
    results: list[object] = []
    grpc.start_stream(callback=lambda result, error: results.append(error or result))
    tensor = tgrpc.InferInput(FEED, list(BATCH.shape), "FP32")
    tensor.set_data_from_numpy(BATCH)
    for request_id in ("a", "b"):
        grpc.async_stream_infer(MODEL, [tensor], request_id=request_id)
    grpc.stop_stream()
    assert len(results) == 2
    for result in results:
        assert isinstance(result, tgrpc.InferResult), result
        np.testing.assert_array_equal(result.as_numpy(FETCH), _grpc_infer(grpc))


# ----- encoded images -----


def test_image_bytes_give_the_image_api_result(http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient,
                                               server: ServerProcess) -> None:  # fmt: skip
    images = [photo(1), photo(2)]
    expected = []
    for data in images:
        reply = httpx.post(f"{server.url}/v1/models/{MODEL}/segment", content=data, timeout=60)
        expected.append(cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_UNCHANGED))
    array = np.array(images, dtype=object)
    h_in = thttp.InferInput(FEED, [2], "BYTES")
    h_in.set_data_from_numpy(array, binary_data=True)
    wanted = [thttp.InferRequestedOutput("label_map", binary_data=True), thttp.InferRequestedOutput("probability")]
    h_out = http.infer(MODEL, [h_in], outputs=wanted)
    g_in = tgrpc.InferInput(FEED, [2], "BYTES")
    g_in.set_data_from_numpy(array)
    g_out = grpc.infer(MODEL, [g_in], outputs=[tgrpc.InferRequestedOutput("label_map")])
    for labels in (h_out.as_numpy("label_map"), g_out.as_numpy("label_map")):
        assert labels.shape == (2, 90, 120) and labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, np.stack(expected))
    probability = h_out.as_numpy("probability")
    assert probability.shape == (2, 90, 120) and probability.dtype == np.float32
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    np.testing.assert_array_equal(probability > 0.5, np.stack(expected) == 1)


def test_images_of_different_sizes_are_refused(http: thttp.InferenceServerClient) -> None:
    tensor = thttp.InferInput(FEED, [2], "BYTES")
    tensor.set_data_from_numpy(np.array([photo(1), photo(2, (60, 80))], dtype=object))
    with pytest.raises(InferenceServerException, match="same size") as info:
        http.infer(MODEL, [tensor])
    assert info.value.status() == "400"


# ----- statistics -----


def test_statistics_count_requests(http: thttp.InferenceServerClient, grpc: tgrpc.InferenceServerClient) -> None:
    before = http.get_inference_statistics(MODEL)["model_stats"][0]
    _http_infer(http, True)
    after = http.get_inference_statistics(MODEL)["model_stats"][0]
    assert after["inference_count"] == before["inference_count"] + 1
    assert after["execution_count"] >= before["execution_count"] + 1
    stats = after["inference_stats"]
    assert stats["success"]["ns"] > before["inference_stats"]["success"]["ns"]
    assert stats["compute_infer"]["count"] >= after["inference_count"]
    assert after["last_inference"] >= before["last_inference"] > 0
    assert grpc.get_inference_statistics(MODEL).model_stats[0].inference_count == after["inference_count"]
    assert [s["name"] for s in http.get_inference_statistics()["model_stats"]] == [MODEL]


# ----- errors -----


def bad_inputs(client: Any) -> tuple[Any, Any, Any]:
    """(a good input, one of the wrong shape, one of the wrong datatype) made with `client`'s module."""
    good = client.InferInput(FEED, list(BATCH.shape), "FP32")
    good.set_data_from_numpy(BATCH)
    wrong_shape = client.InferInput(FEED, [1, 3, 128, 128], "FP32")
    wrong_shape.set_data_from_numpy(BATCH[:1, :, :128, :128].copy())
    wrong_type = client.InferInput(FEED, list(BATCH.shape), "INT64")
    wrong_type.set_data_from_numpy(BATCH.astype(np.int64))
    return good, wrong_shape, wrong_type


def check_errors(cases: list[tuple[Callable[[], object], str, str]]) -> None:
    for call, status, words in cases:
        with pytest.raises(InferenceServerException) as info:
            call()
        assert info.value.status() == status and words in info.value.message(), info.value


def test_errors_over_http(http: thttp.InferenceServerClient) -> None:
    good, wrong_shape, wrong_type = bad_inputs(thttp)
    classify = [thttp.InferRequestedOutput(FETCH, class_count=2)]
    check_errors([(lambda: http.infer("nope", [good]), "404", "not served"),
                  (lambda: http.infer(MODEL, [wrong_shape]), "400", "does not fit"),
                  (lambda: http.infer(MODEL, [wrong_type]), "400", "expects FP32"),
                  (lambda: http.infer(MODEL, [good], outputs=classify), "400", "classification"),
                  (lambda: http.infer(MODEL, [good], model_version="3"), "404", "only version is 1"),
                  (lambda: http.load_model(MODEL), "400", "model control is not offered")])  # fmt: skip


def test_errors_over_grpc(grpc: tgrpc.InferenceServerClient) -> None:
    good, wrong_shape, wrong_type = bad_inputs(tgrpc)
    check_errors([(lambda: grpc.infer("nope", [good]), "StatusCode.NOT_FOUND", "not served"),
                  (lambda: grpc.infer(MODEL, [wrong_shape]), "StatusCode.INVALID_ARGUMENT", "does not fit"),
                  (lambda: grpc.infer(MODEL, [wrong_type]), "StatusCode.INVALID_ARGUMENT", "expects FP32"),
                  (lambda: grpc.get_model_metadata("nope"), "StatusCode.NOT_FOUND", "not served")])  # fmt: skip

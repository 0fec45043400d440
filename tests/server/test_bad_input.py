"""Bad input end to end: every malformed request gets a 4xx naming the problem, on every API, and the server
(and its worker) keeps serving. One server for the module; the last test checks it is unharmed."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import orjson
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Request, Response, Tensor

MAX_PIXELS = 100_000
SEGMENT = "/v1/models/portrait/segment"
PADDLE = "/GeneralModelService/inference"
V2 = "/v2/models/portrait/infer"
GRPC_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
IMAGE_SIZE = 3 * 256 * 256


@pytest.fixture(scope="module")
def server(module_tmp: Path):
    flags = ("--thread", "1", "--max_image_pixels", str(MAX_PIXELS), "--request_timeout_ms", "60000")
    with start_server(module_tmp, *flags) as s:
        s.first_workers = workers(s)  # type: ignore[attr-defined]
        yield s


def workers(server: ServerProcess) -> list[dict]:
    """Each worker's identity (pid, engine, device, readiness), without its memory, which changes as it runs."""
    found = httpx.get(f"{server.url}/v1/models/portrait", timeout=30).json()["workers"]
    return [{k: v for k, v in worker.items() if k != "rss_mib"} for worker in found]


def post(server: ServerProcess, path: str, body: bytes, content_type: str | None = None, **headers: str):
    if content_type is not None:
        headers["content-type"] = content_type
    return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=120)


def error_of(response: httpx.Response) -> str:
    """The error message of an error response, whichever API answered."""
    if response.headers.get("content-type", "").startswith("application/proto"):
        parsed = Response.FromString(response.content)
        assert parsed.err_no == response.status_code
        return parsed.err_msg
    doc = response.json()
    if "err_msg" in doc:
        assert doc["err_no"] == response.status_code
        return doc["err_msg"]
    return doc["error"]


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text[:500]
    message = error_of(response)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# ----- images -----


def png(height: int = 48, width: int = 64) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))[
        1
    ].tobytes()


def jpeg(height: int = 48, width: int = 64) -> bytes:
    return cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))[
        1
    ].tobytes()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(out, format="GIF")
    return out.getvalue()


def corrupt_png() -> bytes:
    """A PNG whose header and chunk layout are fine but whose pixel data is garbage."""
    data = png()
    start = data.index(b"IDAT") + 4
    return data[:start] + bytes(len(data) - start - 12) + data[-12:]


IMAGE_CASES = [
    pytest.param(b"", "image/png", "", 400, ["request body is empty"], id="empty-body"),
    pytest.param(jpeg()[: len(jpeg()) // 2], "image/jpeg", "", 400, ["truncated JPEG"], id="truncated-jpeg"),
    pytest.param(corrupt_png(), "image/png", "", 400, ["corrupt PNG image"], id="corrupt-png"),
    pytest.param(
        np.random.default_rng(3).bytes(4096),
        "application/octet-stream",
        "",
        415,
        ["unsupported image format"],
        id="random-bytes",
    ),
    pytest.param(gif(), "image/gif", "", 415, ["unsupported image format", "JPEG, PNG"], id="gif"),
    pytest.param(b"hello, world", "text/plain", "", 415, ["unsupported image format"], id="text-plain"),
    pytest.param(b'{"image": 1}', "application/json", "", 415, ["unsupported image format"], id="json-body"),
    pytest.param(b"a=1&b=2", "application/x-www-form-urlencoded", "", 415, ["unsupported image format"], id="form"),
    pytest.param(b"", "application/x-www-form-urlencoded", "", 400, ["request body is empty"], id="empty-form"),
    pytest.param(png(400, 400), "image/png", "", 413, ["400x400", f"limit of {MAX_PIXELS} pixels"], id="pixels"),
    pytest.param(png(), "image/png", "?output=bogus", 400, ["output must be one of", "'bogus'"], id="output"),
    pytest.param(png(), "image/png", "?colour=red", 400, ["unknown query option(s) colour"], id="unknown-option"),
    pytest.param(
        png(), "image/png", "?class_id=one", 400, ["query option class_id must be", "'one'"], id="class-id-text"
    ),
    pytest.param(
        png(), "image/png", "?output=probability&class_id=7", 400, ["class_id must be in [0, 1]"], id="class-id-range"
    ),
    pytest.param(png(), "image/png", "?output=overlay&alpha=2", 400, ["alpha must be in [0, 1]"], id="alpha"),
    pytest.param(png(), "image/png", "?output=overlay&format=gif", 400, ["format must be png or jpeg"], id="format"),
    pytest.param(png(), "image/png", "?probability=maybe", 400, ["probability must be true or false"], id="flag"),
]


@pytest.mark.parametrize(("body", "content_type", "query", "status", "words"), IMAGE_CASES)
def test_bad_image_request(server: ServerProcess, body: bytes, content_type: str, query: str, status: int,
                           words: list[str]) -> None:  # fmt: skip
    assert_refused(post(server, f"{SEGMENT}{query}", body, content_type), status, *words)


def test_unknown_model_names_the_served_ones(server: ServerProcess) -> None:
    for path in ("/v1/models/nosuch/segment", "/v2/models/nosuch/infer", f"{PADDLE}?model=nosuch"):
        assert_refused(post(server, path, png(), "image/png"), 404, "'nosuch' is not served", "models: portrait")
    assert_refused(httpx.get(f"{server.url}/v1/models/nosuch"), 404, "models: portrait")


def test_bad_image_encodings(server: ServerProcess) -> None:
    assert_refused(post(server, SEGMENT, png(), "image/png", **{"content-encoding": "br"}), 415, "'br'")
    assert_refused(post(server, SEGMENT, png(), "image/png", **{"content-encoding": "gzip"}), 400, "not valid gzip")
    truncated = gzip.compress(png())[:-20]
    assert_refused(post(server, SEGMENT, truncated, "image/png", **{"content-encoding": "gzip"}), 400, "gzip")
    no_file = httpx.post(
        f"{server.url}{SEGMENT}",
        content=b'--xyz\r\nContent-Disposition: form-data; name="output"\r\n\r\nlabel\r\n--xyz--\r\n',
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert_refused(no_file, 400, "no file part")


# ----- tensors: JSON, protobuf and gRPC carry the same Request -----


def feed(values, shape: list[int], elem_type: int = 1, name: str = "image", field: str = "float_data") -> Tensor:
    tensor = Tensor(elem_type=elem_type, shape=shape, name=name, alias_name=name)
    getattr(tensor, field).extend(values)
    return tensor


def request(*tensors: Tensor, fetch: tuple[str, ...] = ("fetch_name_0",)) -> Request:
    return Request(tensor=list(tensors), fetch_var_names=list(fetch))


PROTO3_JSON_SPECIALS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def as_json(message: Request) -> bytes:
    tensors = []
    for t in message.tensor:
        entry: dict = {"elem_type": t.elem_type, "shape": list(t.shape), "name": t.name, "alias_name": t.alias_name}
        for field in ("float_data", "int64_data", "int_data", "float64_data"):
            values = list(getattr(t, field))
            if values:  # NaN and infinity are not JSON numbers: proto3's JSON mapping spells them as strings
                entry[field] = [v if np.isfinite(v) else PROTO3_JSON_SPECIALS[str(v)] for v in values]
        tensors.append(entry)
    return orjson.dumps({"tensor": tensors, "fetch_var_names": list(message.fetch_var_names)})


ZEROS = np.zeros(IMAGE_SIZE, np.float32)
WITH_NAN = ZEROS.copy()
WITH_NAN[1000] = np.nan
WITH_INF = ZEROS.copy()
WITH_INF[-1] = np.inf

TENSOR_CASES = [
    pytest.param(request(), ["missing feed(s): image"], id="missing-feed"),
    pytest.param(
        request(feed(ZEROS, [1, 3, 256, 256], name="pixels")),
        ["unknown feed name 'pixels'", "this model's inputs: image"],
        id="unknown-feed",
    ),
    pytest.param(
        request(feed(np.zeros(256), [1, 4, 8, 8])),
        ["shape [1, 4, 8, 8] does not fit the model input", "256, 256]"],
        id="shape",
    ),
    pytest.param(request(feed(np.zeros(192), [3, 8, 8])), ["shape [3, 8, 8] does not fit"], id="rank-3"),
    pytest.param(
        request(feed(np.zeros(IMAGE_SIZE, np.int64), [1, 3, 256, 256], 0, field="int64_data")),
        ["model expects elem_type 1, got 0"],
        id="int-for-float",
    ),
    pytest.param(
        request(feed(np.zeros(10), [1, 3, 256, 256])), ["10 values do not fill shape [1, 3, 256, 256]"], id="count"
    ),
    pytest.param(request(feed(WITH_NAN, [1, 3, 256, 256])), ["contains NaN or infinity"], id="nan"),
    pytest.param(request(feed(WITH_INF, [1, 3, 256, 256])), ["contains NaN or infinity"], id="inf"),
    pytest.param(
        request(feed(ZEROS, [1, 3, 256, 256]), fetch=("nope",)),
        ["unknown fetch name(s) 'nope'", "outputs: fetch_name_0"],
        id="fetch",
    ),
    pytest.param(request(feed(ZEROS, [1, 3, 256, 256], 13)), ["elem_type 13 is not supported"], id="elem-type"),
]


@pytest.mark.parametrize(("message", "words"), TENSOR_CASES)
@pytest.mark.parametrize("encoding", ["json", "proto", "grpc"])
def test_bad_tensor_request(server: ServerProcess, encoding: str, message: Request, words: list[str]) -> None:
    if encoding == "grpc":
        with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(GRPC_METHOD)(message.SerializeToString(), timeout=120)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for word in words:
            assert word in info.value.details()
        return
    if encoding == "json":
        response = post(server, PADDLE, as_json(message), "application/json")
    else:
        response = post(server, PADDLE, message.SerializeToString(), "application/proto")
        assert response.headers["content-type"] == "application/proto"
    assert_refused(response, 400, *words)


def test_tensor_bodies_that_do_not_parse(server: ServerProcess) -> None:
    assert_refused(post(server, PADDLE, b"{'tensor': [", "application/json"), 400, "body is not valid JSON")
    assert_refused(post(server, PADDLE, b"[1, 2]", "application/json"), 400, "object with a 'tensor' list")
    nan_token = json.dumps({"tensor": [{"float_data": [float("nan")], "shape": [1], "name": "image"}]}).encode()
    assert_refused(post(server, PADDLE, nan_token, "application/json"), 400, "not valid JSON")
    assert_refused(post(server, PADDLE, b"\xff\xfe\xfd\xfc", "application/proto"), 400,
                   "not a serialized GeneralModelService Request")  # fmt: skip
    good = as_json(request(feed(ZEROS, [1, 3, 256, 256])))
    assert_refused(post(server, PADDLE, good, "application/json", **{"content-encoding": "gzip"}), 400,
                   "not valid gzip")  # fmt: skip
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(GRPC_METHOD)(b"\xff\xfe\xfd\xfc", timeout=120)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a serialized GeneralModelService Request" in info.value.details()


def json_request(**overrides) -> bytes:
    """A valid JSON Request for the portrait model with fields replaced by `overrides`."""
    tensor = {"float_data": [0.0] * IMAGE_SIZE, "elem_type": 1, "shape": [1, 3, 256, 256], "name": "image"}
    doc: dict = {"tensor": [tensor], "fetch_var_names": ["fetch_name_0"]}
    for key, value in overrides.items():
        (tensor if key in tensor else doc)[key] = value
    return orjson.dumps(doc)


def v2_bool_shape() -> bytes:
    return orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [True, 3, 256, 256],
                                     "data": [0.0] * IMAGE_SIZE}]})  # fmt: skip


# Fields of the wrong JSON type that no codec check catches: each used to kill the worker process (exit code 1),
# failing every request batched with it and leaving the model unready while it restarted.
WRONG_TYPES = [
    pytest.param(PADDLE, json_request(elem_type="x"), "elem_type", id="elem_type-text"),
    pytest.param(PADDLE, json_request(log_id="x"), "log_id", id="log_id-text"),
    pytest.param(V2, v2_bool_shape(), "shape", id="v2-bool-shape"),
]


@pytest.mark.parametrize(("path", "body", "field"), WRONG_TYPES)
def test_fields_of_the_wrong_type_are_refused_by_the_worker_not_fatal(server: ServerProcess, path: str, body: bytes,
                                                                      field: str) -> None:  # fmt: skip
    before = workers(server)
    response = post(server, path, body, "application/json")
    assert response.status_code == 400, response.text[:300]
    assert error_of(response)
    assert workers(server) == before, "the worker was replaced"


@pytest.mark.parametrize(("path", "body", "field"), WRONG_TYPES)
def test_fields_of_the_wrong_type_are_named(server: ServerProcess, path: str, body: bytes, field: str) -> None:
    response = post(server, path, body, "application/json")
    assert response.status_code == 400
    assert field in error_of(response)


# ----- KServe v2 -----


def v2(name: str = "image", datatype: str = "FP32", shape: list[int] | None = None, data=None) -> bytes:
    shape = [1, 3, 256, 256] if shape is None else shape
    data = np.zeros(IMAGE_SIZE).tolist() if data is None else data
    return orjson.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]})


V2_CASES = [
    pytest.param(v2(datatype="FLOAT32"), ["datatype 'FLOAT32' is not one of"], id="datatype"),
    pytest.param(v2(datatype="INT64", data=[0] * IMAGE_SIZE), ["model expects FP32, got INT64"], id="int-for-float"),
    pytest.param(v2(shape=[-1, 3, 256, 256]), ["shape must be a list of positive ints"], id="negative-shape"),
    pytest.param(v2(shape=[1, 3, 8, 8], data=[0.0] * 192), ["shape [1, 3, 8, 8] does not fit"], id="shape"),
    pytest.param(v2(shape=[3, 256, 256]), ["does not fit the model input"], id="rank-3"),
    pytest.param(v2(data=[0.0] * 10), ["10 values do not fill shape"], id="count"),
    pytest.param(v2(data=["a", "b"]), ["data is not a list of FP32 values"], id="not-numbers"),
    pytest.param(v2(data=["NaN"] + [0.0] * (IMAGE_SIZE - 1)), ["contains NaN or infinity"], id="nan"),
    pytest.param(v2(name="pixels"), ["unknown input 'pixels'", "this model's inputs: image"], id="unknown-input"),
    pytest.param(orjson.dumps({"inputs": []}), ["missing input(s): image"], id="missing-input"),
    pytest.param(orjson.dumps({"outputs": []}), ["'inputs' list"], id="no-inputs"),
    pytest.param(b"not json", ["body is not valid JSON"], id="not-json"),
]


@pytest.mark.parametrize(("body", "words"), V2_CASES)
def test_bad_kserve_v2_request(server: ServerProcess, body: bytes, words: list[str]) -> None:
    assert_refused(post(server, V2, body, "application/json"), 400, *words)


# ----- afterwards -----


def test_server_still_serves_after_bad_input(server: ServerProcess) -> None:
    image = post(server, SEGMENT, png(), "image/png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    good = request(feed(np.random.default_rng(5).random(IMAGE_SIZE, dtype=np.float32), [1, 3, 256, 256]))
    as_json_response = post(server, PADDLE, as_json(good), "application/json")
    assert as_json_response.status_code == 200
    assert as_json_response.json()["outputs"][0]["tensor"][0]["shape"] == [1, 1, 256, 256]
    proto = Response.FromString(post(server, PADDLE, good.SerializeToString(), "application/proto").content)
    assert proto.err_no == 0 and list(proto.outputs[0].tensor[0].shape) == [1, 1, 256, 256]
    with grpc.insecure_channel(server.address) as channel:
        reply = Response.FromString(channel.unary_unary(GRPC_METHOD)(good.SerializeToString(), timeout=120))
    assert reply.err_no == 0
    kserve = post(server, V2, v2(), "application/json")
    assert kserve.status_code == 200 and kserve.json()["outputs"][0]["shape"] == [1, 1, 256, 256]

    # no bad request reached the point of breaking anything: same worker, no restarts, no 5xx answered
    assert workers(server) == server.first_workers  # type: ignore[attr-defined]
    text = httpx.get(f"{server.url}/metrics").text
    statuses: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "segserving_requests_total":
                statuses[s.labels["status"]] = statuses.get(s.labels["status"], 0.0) + s.value
            assert s.name != "segserving_worker_restarts_total", "a worker was restarted"
    assert statuses and not [status for status in statuses if status.startswith("5")], statuses
    assert {"400", "404", "413", "415", "200"} <= set(statuses)

"""KServe v2 (Open Inference Protocol) REST end to end on a real server: metadata, health, inference equal to the
in-process engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ServerProcess, start_server

from segcore.engines import Engine, EngineOptions, create_engine
from segcore.repository import ModelRepository, ModelSpec, load_spec

MULTI = "legacy_multi"
RNG = np.random.default_rng(7)
PORTRAIT_INPUT = RNG.random((1, 3, 256, 256), dtype=np.float32)
MULTI_INPUT = RNG.normal(0, 1, (2, 3, 16, 24)).astype(np.float32)
MULTI_OUTPUTS = {"argmax_0.tmp_0": "INT64", "softmax_0.tmp_0": "FP32"}


@pytest.fixture(scope="module")
def multi_entry(converted: Callable[[str], Path]) -> Path:
    return converted(MULTI)


@pytest.fixture(scope="module")
def server(multi_entry: Path, module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--model", "portrait", multi_entry) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def engines(http: httpx.Client, multi_entry: Path) -> dict[str, Engine]:
    """The in-process engine of each model, of the kind the server reports as its platform."""
    specs: dict[str, ModelSpec] = {"portrait": ModelRepository().load("portrait"), MULTI: load_spec(multi_entry)}
    out = {}
    for name, spec in specs.items():
        platform = http.get(f"/v2/models/{name}").json()["platform"]
        out[name] = create_engine(spec.server_dir, spec.config, platform, EngineOptions(cpu_threads=1))
    return out


def _v2_input(name: str, array: np.ndarray) -> dict:
    return {"name": name, "datatype": "FP32", "shape": list(array.shape), "data": array.ravel().tolist()}


def _decode(output: dict) -> np.ndarray:
    dtype = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32}[output["datatype"]]
    return np.array(output["data"], dtype).reshape(output["shape"])


def test_server_metadata_and_health(http: httpx.Client) -> None:
    meta = http.get("/v2")
    assert meta.status_code == 200
    assert meta.json()["name"] == "segserving" and isinstance(meta.json()["extensions"], list)
    assert http.get("/v2/health/live").status_code == 200
    ready = http.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_model_metadata(http: httpx.Client) -> None:
    for path in ("/v2/models/portrait", "/v2/models/portrait/versions/1"):
        doc = http.get(path).json()
        assert doc["name"] == "portrait" and doc["versions"] == ["1"] and doc["platform"] == "onnxruntime"
        assert doc["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 256, 256]}]
        assert doc["outputs"] == [{"name": "fetch_name_0", "datatype": "FP32", "shape": [-1, 1, 256, 256]}]
    multi = http.get(f"/v2/models/{MULTI}").json()
    assert multi["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3, -1, -1]}]
    assert {o["name"]: o["datatype"] for o in multi["outputs"]} == MULTI_OUTPUTS
    assert [o["name"] for o in multi["outputs"]] == list(MULTI_OUTPUTS)  # conf order
    # the program's declared ranks: labels [N,H,W], probabilities [N,4,H,W]
    assert [o["shape"] for o in multi["outputs"]] == [[-1, -1, -1], [-1, 4, -1, -1]]


@pytest.mark.parametrize("path", ["/v2/models/{}/ready", "/v2/models/{}/versions/1/ready"])
def test_model_ready(http: httpx.Client, path: str) -> None:
    for name in ("portrait", MULTI):
        reply = http.get(path.format(name))
        assert reply.status_code == 200
        assert reply.json() == {"name": name, "ready": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/versions/1"),
        ("GET", "/v2/models/nope/ready"),
        ("POST", "/v2/models/nope/infer"),
        ("POST", "/v2/models/nope/versions/1/infer"),
    ],
)
def test_unknown_model_is_404(http: httpx.Client, method: str, path: str) -> None:
    body = {"inputs": [_v2_input("image", PORTRAIT_INPUT)]} if method == "POST" else None
    reply = http.request(method, path, json=body)
    assert reply.status_code == 404
    assert "nope" in reply.json()["error"] and "portrait" in reply.json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/portrait/infer", "/v2/models/portrait/versions/1/infer"])
def test_infer_equals_the_engine(http: httpx.Client, engines: dict[str, Engine], path: str) -> None:
    reply = http.post(path, json={"id": "req-1", "inputs": [_v2_input("image", PORTRAIT_INPUT)]})
    assert reply.status_code == 200, reply.text[:500]
    doc = reply.json()
    assert doc["model_name"] == "portrait" and doc["model_version"] == "1" and doc["id"] == "req-1"
    (output,) = doc["outputs"]
    assert output["name"] == "fetch_name_0" and output["datatype"] == "FP32"
    assert output["shape"] == [1, 1, 256, 256]
    want = engines["portrait"].run({"image": PORTRAIT_INPUT})["fetch_name_0"]
    np.testing.assert_array_equal(_decode(output), want, strict=True)


def test_infer_every_output_of_a_multi_output_model(http: httpx.Client, engines: dict[str, Engine]) -> None:
    reply = http.post(f"/v2/models/{MULTI}/infer", json={"inputs": [_v2_input("x", MULTI_INPUT)]})
    assert reply.status_code == 200, reply.text[:500]
    doc = reply.json()
    assert "id" not in doc
    want = engines[MULTI].run({"x": MULTI_INPUT})
    assert [o["name"] for o in doc["outputs"]] == list(MULTI_OUTPUTS)
    for output in doc["outputs"]:
        assert output["datatype"] == MULTI_OUTPUTS[output["name"]]
        assert output["shape"] == list(want[output["name"]].shape)
        np.testing.assert_array_equal(_decode(output), want[output["name"]], strict=True)
    assert doc["outputs"][0]["shape"] == [2, 16, 24] and doc["outputs"][1]["shape"] == [2, 4, 16, 24]


@pytest.mark.parametrize("name", list(MULTI_OUTPUTS))
def test_requested_outputs_subset(http: httpx.Client, engines: dict[str, Engine], name: str) -> None:
    body = {"inputs": [_v2_input("x", MULTI_INPUT)], "outputs": [{"name": name}]}
    reply = http.post(f"/v2/models/{MULTI}/versions/1/infer", json=body)
    assert reply.status_code == 200, reply.text[:500]
    (output,) = reply.json()["outputs"]
    assert output["name"] == name
    np.testing.assert_array_equal(_decode(output), engines[MULTI].run({"x": MULTI_INPUT})[name], strict=True)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"inputs": [_v2_input("x", MULTI_INPUT)], "outputs": [{"name": "nope"}]}, ["nope", "softmax_0.tmp_0"]),
        ({"inputs": [_v2_input("nope", MULTI_INPUT)]}, ["nope", "x"]),
        ({"inputs": [{**_v2_input("x", MULTI_INPUT), "datatype": "INT64"}]}, ["FP32", "INT64"]),
        ({"inputs": [{**_v2_input("x", MULTI_INPUT), "shape": [2, 3, 16, 25]}]}, ["fill"]),
        ({"inputs": []}, ["missing", "x"]),
        ({"instances": [1, 2]}, ["inputs"]),
    ],
)
def test_bad_requests_are_400(http: httpx.Client, body: dict, words: list[str]) -> None:
    reply = http.post(f"/v2/models/{MULTI}/infer", json=body)
    assert reply.status_code == 400
    for word in words:
        assert word in reply.json()["error"]


def test_input_shape_must_fit_the_model(http: httpx.Client) -> None:
    image = RNG.random((1, 3, 128, 128), dtype=np.float32)
    reply = http.post("/v2/models/portrait/infer", json={"inputs": [_v2_input("image", image)]})
    assert reply.status_code == 400
    assert "256" in reply.json()["error"]

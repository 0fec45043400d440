"""Paddle Serving's GeneralModelService end to end: a real server, driven the way the stock 0.9 HttpClient drives it
(http+json, http+proto, grpc), answers bit for bit what the same engine gives in process."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import requests
from helpers import child_env
from paddle_client import PaddleClient, response_to_dict
from paddle_support import (
    MODES,
    MULTI,
    MULTI_FEED,
    MULTI_FETCH,
    MULTI_INPUT,
    assert_profile,
    assert_same_arrays,
    expected_outputs,
    field_of,
    model_arg,
    response_tensors,
    sample_feed,
)
from servers import ServerProcess, start_server

from segcore.engines import Engine, EngineOptions, create_engine
from segcore.proto.general_model_service_pb2 import Request, Response
from segcore.repository import ModelRepository, ModelSpec, load_spec


@pytest.fixture(scope="module")
def multi_entry(build_model: Callable[[str], Path], module_tmp: Path) -> Path:
    """legacy_multi converted with aliases (feed x -> pixels; fetches -> labels, probs) and its ONNX copy."""
    entry = module_tmp / "repo" / MULTI
    proc = subprocess.run(
        [sys.executable, "-m", "convert", "--dirname", str(build_model(MULTI)),
         "--serving_server", str(entry / "serving_server"), "--serving_client", str(entry / "serving_client"),
         "--feed_alias_names", MULTI_FEED[0], "--fetch_alias_names", ",".join(f[0] for f in MULTI_FETCH)],
        env=child_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return entry


@pytest.fixture(scope="module")
def server(multi_entry: Path, module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--model", "portrait", multi_entry) as srv:
        yield srv


@pytest.fixture(scope="module")
def specs(multi_entry: Path) -> dict[str, ModelSpec]:
    return {"portrait": ModelRepository().load("portrait"), MULTI: load_spec(multi_entry)}


@pytest.fixture(scope="module")
def engine(server: ServerProcess, specs: dict[str, ModelSpec]) -> Callable[[str], Engine]:
    """engine(model) -> the in-process engine of the kind the server reports for that model (its 'platform')."""
    cache: dict[str, Engine] = {}

    def get(name: str) -> Engine:
        if name not in cache:
            platform = httpx.get(f"{server.url}/v1/models/{name}").json()["platform"]
            spec = specs[name]
            cache[name] = create_engine(spec.server_dir, spec.config, platform, EngineOptions(cpu_threads=1))
        return cache[name]

    return get


@pytest.fixture
def client(server: ServerProcess, specs: dict[str, ModelSpec]) -> Callable[..., PaddleClient]:
    """client(mode, model='portrait') -> a connected PaddleClient reading that model's client conf."""
    made: list[PaddleClient] = []

    def make(mode: str, model: str = "portrait") -> PaddleClient:
        c = PaddleClient(specs[model].client_dir / "serving_client_conf.prototxt", mode)
        c.connect(server.address)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("model", ["portrait", MULTI])
@pytest.mark.parametrize("mode", MODES)
def test_outputs_equal_the_engine_bit_for_bit(client, engine, mode: str, model: str) -> None:
    c = client(mode, model)
    feed = sample_feed(model)
    before = time.time_ns() // 1000
    response = c.predict(feed, log_id=4242, model=model_arg(model))
    after = time.time_ns() // 1000
    if mode == "json":
        assert isinstance(response, dict)
    else:
        assert isinstance(response, Response)
    want = expected_outputs(engine(model), model, feed, batched=False)
    assert_same_arrays(response_to_dict(response), want)

    assert field_of(response, "log_id") == 4242
    assert_profile(response, before, after)
    outputs = response["outputs"] if mode == "json" else response.outputs
    assert field_of(outputs[0], "engine_name") == "GeneralInferOp_0"
    assert not field_of(response, "err_no", 0)
    tensors = response_tensors(response)
    fetch = [("fetch_name_0", "fetch_name_0", np.float32, 1)] if model == "portrait" else list(MULTI_FETCH)
    assert len(tensors) == len(fetch)
    for tensor, (alias, name, _, elem_type) in zip(tensors, fetch, strict=True):
        assert field_of(tensor, "name") == name
        assert field_of(tensor, "alias_name") == alias
        assert list(field_of(tensor, "shape")) == list(want[alias].shape)
        if mode == "json" and elem_type == 0:
            assert "elem_type" not in tensor  # brpc's pb->json omits default values: INT64 has no elem_type
            assert "int64_data" in tensor and "float_data" not in tensor
        else:
            assert field_of(tensor, "elem_type") == elem_type


def test_json_request_is_what_the_stock_client_sends(client) -> None:
    c = client("json", MULTI)
    body = c.request_dict(sample_feed(MULTI), fetch=["probs", "nope"], log_id=3)
    assert list(body) == ["fetch_var_names", "log_id", "tensor"]
    assert body["fetch_var_names"] == ["probs"]  # the stock client drops names its conf does not know
    (tensor,) = body["tensor"]
    assert list(tensor) == ["float_data", "shape", "elem_type", "name", "alias_name"]
    assert tensor["shape"] == [1, 3, 24, 40] and tensor["elem_type"] == 1
    assert (tensor["name"], tensor["alias_name"]) == ("x", "pixels")
    # json.dumps prints each float32 value with the 17 digits of its double: exact on the way in
    text = json.dumps(body)
    assert np.array_equal(np.array(json.loads(text)["tensor"][0]["float_data"], np.float32), MULTI_INPUT.ravel())


@pytest.mark.parametrize("mode", MODES)
def test_batch_of_three_in_one_request(client, engine, mode: str) -> None:
    c = client(mode)
    feed = sample_feed("portrait", batch=3)
    assert feed["image"].shape == (3, 3, 256, 256)
    response = c.predict(feed, batch=True)
    tensor = response_tensors(response)[0]
    assert list(field_of(tensor, "shape")) == [3, 1, 256, 256]
    assert_same_arrays(response_to_dict(response), expected_outputs(engine("portrait"), "portrait", feed, batched=True))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fetch", "aliases"),
    [
        (["probs"], ["probs"]),
        (["softmax_0.tmp_0"], ["probs"]),  # a real name selects the var too; the reply carries its alias
        (["argmax_0.tmp_0", "probs"], ["labels", "probs"]),
        ([], ["labels", "probs"]),  # empty = every output, in conf order
    ],
)
def test_fetch_by_alias_real_name_or_all(client, engine, mode: str, fetch: list[str], aliases: list[str]) -> None:
    c = client(mode, MULTI)
    response = c.predict(sample_feed(MULTI), fetch=fetch, model=MULTI, filter_fetch=False)
    got = response_to_dict(response)
    assert sorted(got) == sorted(aliases)
    if not fetch:
        assert list(got) == aliases
    want = expected_outputs(engine(MULTI), MULTI, sample_feed(MULTI), batched=False)
    assert_same_arrays({a: got[a] for a in aliases}, {a: want[a] for a in aliases})
    names = {field_of(t, "alias_name"): field_of(t, "name") for t in response_tensors(response)}
    assert names == {a: n for a, n, _, _ in MULTI_FETCH if a in aliases}


def _assert_lists_outputs(message: str) -> None:
    assert "nope" in message
    for name in ("labels", "probs", "argmax_0.tmp_0", "softmax_0.tmp_0"):
        assert name in message


@pytest.mark.parametrize("mode", ["json", "proto"])
def test_unknown_fetch_name_is_http_400_with_err_fields(client, mode: str) -> None:
    c = client(mode, MULTI)
    reply = c.post(c.encode(sample_feed(MULTI), fetch=["probs", "nope"], filter_fetch=False, log_id=9), model=MULTI)
    assert reply.status_code == 400
    if mode == "json":
        assert reply.headers["Content-Type"].startswith("application/json")
        doc = reply.json()
        err_no, err_msg = doc["err_no"], doc["err_msg"]
        assert "outputs" not in doc
    else:
        assert reply.headers["Content-Type"] == "application/proto"
        response = Response.FromString(reply.content)
        err_no, err_msg = response.err_no, response.err_msg
        assert not response.outputs
    assert err_no == 400
    _assert_lists_outputs(err_msg)


def test_unknown_fetch_name_is_grpc_invalid_argument(client) -> None:
    c = client("grpc", MULTI)
    with pytest.raises(grpc.RpcError) as info:
        c.predict(sample_feed(MULTI), fetch=["nope"], model=MULTI, filter_fetch=False)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _assert_lists_outputs(info.value.details())


def test_model_selection_reaches_the_second_model(client, server: ServerProcess) -> None:
    """Without ?model= / metadata the default (first) model answers; a multi request there is refused."""
    c = client("proto", MULTI)
    reply = c.post(c.encode(sample_feed(MULTI)))  # no model: goes to portrait, which has no feed 'x'
    assert reply.status_code == 400
    assert "image" in Response.FromString(reply.content).err_msg
    g = client("grpc", MULTI)
    with pytest.raises(grpc.RpcError) as info:
        g.call_grpc(g.request_proto(sample_feed(MULTI)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_model_is_404_and_not_found(client) -> None:
    c = client("json")
    reply = c.post(c.encode(sample_feed("portrait")), model="nope")
    assert reply.status_code == 404
    assert reply.json()["err_no"] == 404 and "portrait" in reply.json()["err_msg"]
    g = client("grpc")
    with pytest.raises(grpc.RpcError) as info:
        g.call_grpc(g.request_proto(sample_feed("portrait")), model="nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert MULTI in info.value.details()


@pytest.mark.parametrize("mode", ["json", "proto"])
def test_gzip_request_body_is_accepted(client, engine, mode: str) -> None:
    c = client(mode, MULTI)
    c.request_compress = True
    body = c.encode(sample_feed(MULTI), log_id=5)
    assert body[:2] == b"\x1f\x8b"
    reply = c.post(body, model=MULTI)
    assert reply.status_code == 200, reply.text[:500]
    response = Response.FromString(reply.content) if mode == "proto" else reply.json()
    assert field_of(response, "log_id") == 5
    assert_same_arrays(
        response_to_dict(response), expected_outputs(engine(MULTI), MULTI, sample_feed(MULTI), batched=False)
    )


def test_corrupt_gzip_body_is_400(client) -> None:
    c = client("json")
    c.request_compress = True
    reply = c.post(b"\x1f\x8b\x08\x00not really gzip")
    assert reply.status_code == 400
    assert "gzip" in reply.json()["err_msg"]


@pytest.mark.parametrize("mode", ["json", "proto"])
def test_gzip_response_only_when_accepted(client, server: ServerProcess, engine, mode: str) -> None:
    c = client(mode)
    body = c.encode(sample_feed("portrait"))
    url = f"{server.url}/GeneralModelService/inference"
    want = expected_outputs(engine("portrait"), "portrait", sample_feed("portrait"), batched=False)

    def parse(content: bytes) -> dict[str, np.ndarray]:
        return response_to_dict(Response.FromString(content) if mode == "proto" else json.loads(content))

    # httpx: asked for gzip -> gzip on the wire, decoded transparently
    zipped = httpx.post(url, content=body, headers={**c.headers(), "Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert_same_arrays(parse(zipped.content), want)
    with httpx.stream("POST", url, content=body, headers={**c.headers(), "Accept-Encoding": "gzip"}) as streamed:
        raw = b"".join(streamed.iter_raw())
    assert raw[:2] == b"\x1f\x8b"
    assert_same_arrays(parse(gzip.decompress(raw)), want)
    # not asked -> plain body
    plain = httpx.post(url, content=body, headers={**c.headers(), "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert_same_arrays(parse(plain.content), want)
    # requests (what the stock client uses) sends Accept-Encoding: gzip, deflate by default, and decodes
    reply = c.post(body)
    assert reply.headers["Content-Encoding"] == "gzip"
    assert_same_arrays(parse(reply.content), want)
    # the stock client's set_response_compress(True) header spelling
    c.response_compress = True
    assert requests.post(url, data=body, headers=c.headers()).headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("mode", ["json", "proto"])
def test_debug_method_over_http(client, engine, mode: str) -> None:
    c = client(mode, MULTI)
    c.service_name = "/GeneralModelService/debug"
    response = c.predict(sample_feed(MULTI), model=MULTI, log_id=11)
    assert field_of(response, "log_id") == 11
    assert_same_arrays(
        response_to_dict(response), expected_outputs(engine(MULTI), MULTI, sample_feed(MULTI), batched=False)
    )


def test_debug_method_over_grpc(client, engine) -> None:
    c = client("grpc")
    response = c.call_grpc(c.request_proto(sample_feed("portrait"), log_id=12), method="debug")
    assert response.log_id == 12
    assert_same_arrays(
        response_to_dict(response), expected_outputs(engine("portrait"), "portrait", sample_feed("portrait"), False)
    )


def test_grpc_accepts_a_plain_ip_port_target(server: ServerProcess, engine, specs) -> None:
    from segcore.proto.general_model_service_pb2_grpc import GeneralModelServiceStub

    c = PaddleClient(specs["portrait"].client_dir / "serving_client_conf.prototxt", "grpc")
    request = c.request_proto(sample_feed("portrait"), fetch=["fetch_name_0"])
    with grpc.insecure_channel(server.address) as channel:
        response = GeneralModelServiceStub(channel).inference(request, timeout=20)
    assert_same_arrays(
        response_to_dict(response), expected_outputs(engine("portrait"), "portrait", sample_feed("portrait"), False)
    )


def test_request_with_alias_only_binds_by_alias(client, engine) -> None:
    """A hand-written request naming the feed only by alias_name still binds (the server prefers `name`)."""
    c = client("proto", MULTI)
    request = c.request_proto(sample_feed(MULTI))
    request.tensor[0].name = ""
    reply = c.post(request.SerializeToString(), model=MULTI)
    assert reply.status_code == 200
    assert_same_arrays(
        response_to_dict(Response.FromString(reply.content)),
        expected_outputs(engine(MULTI), MULTI, sample_feed(MULTI), batched=False),
    )


def test_malformed_bodies_are_400(client) -> None:
    j = client("json")
    reply = j.post(b"{not json")
    assert reply.status_code == 400 and reply.json()["err_no"] == 400
    p = client("proto")
    reply = p.post(b"\xff\xff\xff\xff")
    assert reply.status_code == 400
    assert Response.FromString(reply.content).err_no == 400
    request = p.request_proto(sample_feed("portrait"))
    del request.tensor[0].float_data[-1]  # one value short of the shape
    reply = p.post(request.SerializeToString())
    assert reply.status_code == 400
    assert "196608" in Response.FromString(reply.content).err_msg


def test_empty_request_has_no_outputs(client) -> None:
    reply = client("proto").post(Request().SerializeToString())
    assert reply.status_code == 400
    assert Response.FromString(reply.content).err_no == 400


def test_minimal_curl_style_json_request(server: ServerProcess, engine) -> None:
    """The doc's curl form: no JSON Content-Type (curl -d sends a form type), only the fields the server needs,
    log_id 0. brpc-style JSON omits default values, so the reply has no log_id, err_no or err_msg."""
    body = {"tensor": [{"float_data": MULTI_INPUT.ravel().tolist(), "elem_type": 1, "name": "x",
                        "shape": [1, *MULTI_INPUT.shape]}], "fetch_var_names": ["labels"], "log_id": 0}  # fmt: skip
    reply = requests.post(
        f"{server.url}/GeneralModelService/inference?model={MULTI}",
        data=json.dumps(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 200, reply.text[:500]
    doc = reply.json()
    assert set(doc) == {"outputs", "profile_time"}
    want = expected_outputs(engine(MULTI), MULTI, sample_feed(MULTI), batched=False)
    assert_same_arrays(response_to_dict(doc), {"labels": want["labels"]})

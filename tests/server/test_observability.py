"""Health, Prometheus metrics, OpenAPI and the model listing of a real server, after traffic on every protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from conftest import ServerProcess, start_server
from paddle_client import PaddleClient
from prometheus_client.parser import text_string_to_metric_families

from segcore.repository import ModelRepository

MULTI = "legacy_multi"
PROTOCOLS = ("http-json", "http-proto", "grpc", "image", "kserve-v2")
STAGES = ("queue", "preprocess", "inference", "postprocess")
IMAGE = np.random.default_rng(3).random((3, 256, 256), dtype=np.float32)


@pytest.fixture(scope="module")
def server(converted: Callable[[str], Path], module_tmp: Path) -> Iterator[ServerProcess]:
    with start_server(module_tmp, "--thread", "1", "--model", "portrait", converted(MULTI)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client) -> Samples:
    """Every sample of /metrics as {(sample name, sorted labels): value}."""
    reply = http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def send(server: ServerProcess, http: httpx.Client, protocol: str, ok: bool = True) -> None:
    """One portrait request over `protocol`; ok=False sends one the server must refuse with 400."""
    conf = ModelRepository().load("portrait").client_dir / "serving_client_conf.prototxt"
    fetch = ["fetch_name_0"] if ok else ["nope"]
    if protocol in ("http-json", "http-proto", "grpc"):
        mode = {"http-json": "json", "http-proto": "proto", "grpc": "grpc"}[protocol]
        with PaddleClient(conf, mode) as client:
            client.connect(server.address)
            if mode == "grpc":
                try:
                    client.call_grpc(client.request_proto({"image": IMAGE}, fetch, filter_fetch=False))
                    status = 200
                except grpc.RpcError as exc:
                    status = 400 if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else 500
            else:
                status = client.post(client.encode({"image": IMAGE}, fetch, filter_fetch=False)).status_code
    elif protocol == "image":
        _, png = cv2.imencode(".png", (IMAGE.transpose(1, 2, 0) * 255).astype(np.uint8))
        params = {} if ok else {"bogus": "1"}
        status = http.post("/v1/models/portrait/segment", content=png.tobytes(), params=params).status_code
    else:
        inputs = [{"name": "image", "datatype": "FP32", "shape": [1, 3, 256, 256], "data": IMAGE.ravel().tolist()}]
        body = {"inputs": inputs, "outputs": [{"name": fetch[0]}]}
        status = http.post("/v2/models/portrait/infer", json=body).status_code
    assert status == (200 if ok else 400)


def test_health(http: httpx.Client) -> None:
    live = http.get("/health/live")
    assert live.status_code == 200 and live.json() == {"live": True}
    ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "draining": False, "models": {"portrait": True, MULTI: True}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_requests_total_counts_each_protocol_and_status(server: ServerProcess, http: httpx.Client,
                                                        protocol: str) -> None:  # fmt: skip
    name = "segserving_requests_total"
    before = scrape(http)
    send(server, http, protocol)
    send(server, http, protocol)
    send(server, http, protocol, ok=False)
    after = scrape(http)
    for status, count in (("200", 2), ("400", 1)):
        labels = {"model": "portrait", "protocol": protocol, "status": status}
        assert value(after, name, **labels) - value(before, name, **labels) == count
    others = [p for p in PROTOCOLS if p != protocol]
    for other in others:  # nothing counted under another protocol
        labels = {"model": "portrait", "protocol": other, "status": "200"}
        assert value(after, name, **labels) == value(before, name, **labels)
    latency = value(after, "segserving_request_duration_seconds_count", model="portrait", protocol=protocol)
    assert latency >= 3


def test_unknown_model_is_counted_404_under_one_label(http: httpx.Client) -> None:
    before = scrape(http)
    assert http.post("/v2/models/ghost/infer", json={"inputs": []}).status_code == 404
    after = scrape(http)
    labels = {"model": "(unknown)", "protocol": "kserve-v2", "status": "404"}
    assert value(after, "segserving_requests_total", **labels) - value(before, "segserving_requests_total", **labels)


def test_stage_durations_queue_depth_and_batch_size(server: ServerProcess, http: httpx.Client) -> None:
    before = scrape(http)
    for protocol in PROTOCOLS:
        send(server, http, protocol)
    after = scrape(http)
    for stage in STAGES:
        labels = {"model": "portrait", "stage": stage}
        count = "segserving_stage_duration_seconds_count"
        assert value(after, count, **labels) - value(before, count, **labels) == 5  # one per request
        assert value(after, "segserving_stage_duration_seconds_sum", **labels) > 0
        bucket = value(after, "segserving_stage_duration_seconds_bucket", le="+Inf", **labels)
        assert bucket == value(after, count, **labels)
    for model in ("portrait", MULTI):
        assert ("segserving_queue_depth", (("model", model),)) in after
        assert value(after, "segserving_queue_depth", model=model) == 0  # nothing waits once answered
    batches = value(after, "segserving_batch_size_count", model="portrait")
    assert batches - value(before, "segserving_batch_size_count", model="portrait") == 5  # sequential: one each
    assert value(after, "segserving_batch_size_sum", model="portrait") >= batches
    assert ("segserving_inflight_requests", ()) in after


def test_memory_of_every_process_is_reported(http: httpx.Client) -> None:
    after = scrape(http)
    front = value(after, "segserving_memory_rss_bytes", process="front")
    assert front > 20 * 2**20  # Python, FastAPI, grpc: tens of MiB at least
    for model in ("portrait", MULTI):
        doc = http.get(f"/v1/models/{model}").json()
        for worker in doc["workers"]:
            rss = value(after, "segserving_memory_rss_bytes", process=f"{model}/{worker['index']}")
            assert rss > 20 * 2**20, (model, worker)
            assert worker["rss_mib"] > 20 and abs(worker["rss_mib"] - rss / 2**20) < 200


def test_openapi_lists_the_routes(http: httpx.Client) -> None:
    reply = http.get("/openapi.json")
    assert reply.status_code == 200
    paths = reply.json()["paths"]
    for path in ("/GeneralModelService/inference", "/GeneralModelService/debug", "/v1/models/{name}/segment",
                 "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer", "/v2/health/ready",
                 "/health/live", "/health/ready", "/metrics", "/v1/models"):  # fmt: skip
        assert path in paths, path
    assert "post" in paths["/GeneralModelService/inference"]
    assert "post" in paths["/v1/models/{name}/segment"]
    assert "get" in paths["/metrics"]


def test_model_listing(http: httpx.Client) -> None:
    doc = http.get("/v1/models").json()
    assert doc["default"] == "portrait"
    models = {m["name"]: m for m in doc["models"]}
    assert list(models) == ["portrait", MULTI]
    for model in models.values():
        assert model["platform"] == "onnxruntime"
        assert model["ready"] is True
        (worker,) = model["workers"]  # --thread 1
        assert worker["ready"] is True and worker["engine"] == "onnxruntime" and worker["device"] == "cpu"
        assert isinstance(worker["pid"], int) and worker["pid"] > 0
    assert models["portrait"]["image_api"] is True and models["portrait"]["class_names"] == ["background", "person"]
    assert models[MULTI]["image_api"] is False
    assert len({m["workers"][0]["pid"] for m in models.values()}) == 2  # a process per model
    one = http.get("/v1/models/portrait").json()
    assert one == models["portrait"]
    missing = http.get("/v1/models/ghost")
    assert missing.status_code == 404 and "portrait" in missing.json()["error"]


def test_invented_model_names_fold_into_one_label(http: httpx.Client) -> None:
    """Requests to models that do not exist must not add a series each: /metrics stays bounded."""
    before = len(http.get("/metrics").content)
    for i in range(300):
        assert http.post(f"/v1/models/invented-{i}/segment", content=b"x").status_code == 404
    samples = scrape(http)
    assert not any(dict(labels).get("model", "").startswith("invented-") for _, labels in samples)
    assert value(samples, "segserving_requests_total", model="(unknown)", protocol="image", status="404") >= 300
    assert len(http.get("/metrics").content) - before < 4000  # one label's series, not 300

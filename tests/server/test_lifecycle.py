"""Server lifecycle end to end: SIGTERM drain, killed workers, dynamic batching, a model that cannot load."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from overload_support import wait_for
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Request, Response, Tensor

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "serving_models" / "portrait"
SEGMENT = "/v1/models/portrait/segment"
GRPC_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
REQUEST_TIMEOUT_MS = 60_000  # generous: "fails fast" below means well inside this
CLIENT_TIMEOUT = 120.0


def smooth_jpeg(side: int, seed: int = 0) -> bytes:
    """A large photo-like JPEG (cheap to make and send, costly to decode and resize: it keeps a worker busy)."""
    small = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC))[1].tobytes()


def noise_png(height: int, width: int, seed: int) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))[
        1
    ].tobytes()


def png_size(data: bytes) -> tuple[int, int]:
    """(height, width) of a PNG, decoded."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "response is not a decodable image"
    return image.shape[:2]


def samples(server: ServerProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name` in /metrics, keyed by its sorted labels."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def sample(server: ServerProcess, name: str, **labels: str) -> float | None:
    return samples(server, name).get(tuple(sorted(labels.items())))


def inflight(server: ServerProcess) -> float | None:
    return sample(server, "segserving_inflight_requests")


def workers(server: ServerProcess) -> list[dict]:
    return httpx.get(f"{server.url}/v1/models/portrait", timeout=30).json()["workers"]


def segment(server: ServerProcess, data: bytes, query: str = "") -> httpx.Response:
    return httpx.post(f"{server.url}{SEGMENT}{query}", content=data, timeout=CLIENT_TIMEOUT)


@pytest.fixture(scope="module")
def heavy_jpeg() -> bytes:
    return smooth_jpeg(4000)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    return noise_png(96, 128, 1)


# ----- SIGTERM drain -----


def tensor_request() -> bytes:
    """A serialized GeneralModelService Request for the portrait model (1x3x256x256 float32)."""
    values = np.random.default_rng(2).random(3 * 256 * 256, dtype=np.float32)
    tensor = Tensor(elem_type=1, shape=[1, 3, 256, 256], name="image", alias_name="image", float_data=values)
    return Request(tensor=[tensor], fetch_var_names=["fetch_name_0"]).SerializeToString()


def grpc_infer(server: ServerProcess) -> Response | grpc.RpcError:
    with grpc.insecure_channel(server.address) as channel:
        try:
            return Response.FromString(channel.unary_unary(GRPC_METHOD)(tensor_request(), timeout=CLIENT_TIMEOUT))
        except grpc.RpcError as error:
            return error


def in_flight_then_sigterm(server: ServerProcess, image: bytes, http: int, grpc_calls: int):
    """Put `http` image requests and `grpc_calls` tensor calls in flight, SIGTERM the server, return
    (HTTP responses, gRPC outcomes, exit code)."""
    with ThreadPoolExecutor(http + grpc_calls) as pool:
        futures = [pool.submit(segment, server, image) for _ in range(http)]
        wait_for(lambda: inflight(server) == http or any(f.done() for f in futures), "HTTP requests in flight")
        calls = [pool.submit(grpc_infer, server) for _ in range(grpc_calls)]
        total = http + grpc_calls
        wait_for(lambda: inflight(server) == total or any(f.done() for f in futures + calls), "all in flight")
        assert not any(f.done() for f in futures + calls), "a request finished before SIGTERM: make the work heavier"
        server.process.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
        outcomes = [c.result() for c in calls]
    return responses, outcomes, server.process.wait(timeout=CLIENT_TIMEOUT)


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(tmp_path: Path, heavy_jpeg: bytes) -> None:
    with start_server(tmp_path, "--thread", "1", "--request_timeout_ms", REQUEST_TIMEOUT_MS) as server:
        responses, outcomes, code = in_flight_then_sigterm(server, heavy_jpeg, http=6, grpc_calls=2)
    assert [r.status_code for r in responses] == [200] * 6, [r.text[:200] for r in responses]
    assert all(png_size(r.content) == (4000, 4000) for r in responses)
    assert all(isinstance(o, Response) and o.err_no == 0 for o in outcomes), outcomes
    assert code == 0, server.log()[-3000:]
    log = server.log()
    assert "server stopped" in log
    assert log.index("Shutting down") < log.index("server stopped")
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]


def test_drain_timeout_cuts_off_the_rest_with_503(tmp_path: Path) -> None:
    heavier = smooth_jpeg(6000)  # six of these are seconds of work: far more than the 0.5 s drain
    flags = ("--thread", "1", "--drain_timeout_ms", "500", "--request_timeout_ms", REQUEST_TIMEOUT_MS)
    with start_server(tmp_path, *flags) as server:
        responses, outcomes, code = in_flight_then_sigterm(server, heavier, http=6, grpc_calls=1)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    for response in responses:
        if response.status_code == 503:
            assert response.json() == {"error": "server is shutting down", "code": "unavailable"}
    (outcome,) = outcomes
    assert isinstance(outcome, grpc.RpcError), "the last request in line finished within the drain"
    assert outcome.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in outcome.details()
    assert code == 0, server.log()[-3000:]
    log = server.log()
    assert "server stopped" in log
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]


def test_sigterm_while_models_load_exits_zero(tmp_path: Path) -> None:
    with start_server(tmp_path, "--thread", "1", "--engine", "paddle", wait=False) as server:
        statuses = []

        def answered_503() -> bool:
            try:
                statuses.append(httpx.get(f"{server.url}/health/ready", timeout=5).status_code)
            except httpx.TransportError:
                return False
            return statuses[-1] == 503

        wait_for(answered_503, "the port to answer while loading")
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=CLIENT_TIMEOUT)
    log = server.log()
    assert statuses[-1] == 503 and "ready: serving" not in log  # the signal came while the model was loading
    assert code == 0, log[-3000:]
    assert "server stopped" in log
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]


# ----- killed workers -----


def test_killed_worker_is_replaced_and_counted(tmp_path: Path, small_png: bytes) -> None:
    with start_server(tmp_path, "--thread", "2", "--request_timeout_ms", REQUEST_TIMEOUT_MS) as server:
        before = workers(server)
        assert [w["index"] for w in before] == [0, 1] and all(w["ready"] and w["pid"] for w in before)
        assert sample(server, "segserving_worker_restarts_total", model="portrait") is None
        victim, survivor = before[0]["pid"], before[1]["pid"]
        os.kill(victim, signal.SIGKILL)

        statuses = []
        for _ in range(100):  # the server keeps answering; a request may land on the dead worker before it is noticed
            response = segment(server, small_png)
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            assert response.status_code in (500, 503), response.text
            time.sleep(0.05)
        assert statuses[-1] == 200, statuses

        def replaced() -> bool:
            now = workers(server)
            return all(w["ready"] for w in now) and now[0]["pid"] not in (None, victim)

        wait_for(replaced, "a replacement worker", pause=0.05)
        after = workers(server)
        assert after[0]["pid"] != victim and after[0]["pid"] not in (survivor, None)
        assert after[1]["pid"] == survivor
        assert sample(server, "segserving_worker_restarts_total", model="portrait") == 1.0
        assert [segment(server, small_png).status_code for _ in range(4)] == [200] * 4
        assert f"model portrait worker 0 died (exit code {-signal.SIGKILL})" in server.log()


def test_request_on_a_killed_worker_fails_fast(tmp_path: Path) -> None:
    heavier = smooth_jpeg(6000)
    with start_server(tmp_path, "--thread", "1", "--request_timeout_ms", REQUEST_TIMEOUT_MS) as server:
        (only,) = workers(server)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            future = pool.submit(segment, server, heavier, "?output=overlay&format=png")
            # the job reaches the worker in the same event-loop step that counts it in flight
            wait_for(lambda: inflight(server) == 1 or future.done(), "the request in flight")
            assert not future.done()
            os.kill(only["pid"], signal.SIGKILL)
            response = future.result()
            elapsed = time.monotonic() - started
        assert response.status_code == 500
        assert "inference worker died" in response.json()["error"]
        assert elapsed < REQUEST_TIMEOUT_MS / 1000 / 2, "the request waited for its deadline instead of failing"

        # the only worker comes back; meanwhile the model is not ready (503, Retry-After) rather than hanging
        for _ in range(200):
            response = segment(server, smooth_jpeg(64))
            if response.status_code == 200:
                break
            assert response.status_code == 503 and "not ready" in response.json()["error"], response.text
            assert int(response.headers["retry-after"]) >= 1
            time.sleep(0.05)
        assert response.status_code == 200
        (new,) = workers(server)
        assert new["pid"] != only["pid"]
        assert sample(server, "segserving_worker_restarts_total", model="portrait") == 1.0
        assert sample(server, "segserving_requests_total", model="portrait", protocol="image", status="500") == 1.0


def test_worker_that_cannot_restart_leaves_the_model_unready_until_it_can(tmp_path: Path) -> None:
    entry = tmp_path / "models" / "portrait"
    shutil.copytree(PORTRAIT, entry)
    onnx = entry / "serving_server" / "model.onnx"
    with start_server(tmp_path, "--model", entry, "--thread", "1", "--engine", "onnxruntime") as server:
        (only,) = workers(server)
        onnx.rename(onnx.with_suffix(".away"))  # restarts fail until it is back
        os.kill(only["pid"], signal.SIGKILL)
        wait_for(lambda: "failed to restart" in server.log(), "a failed restart", pause=0.05)

        response = segment(server, smooth_jpeg(64))
        assert response.status_code == 503 and "not ready" in response.json()["error"], response.text
        assert int(response.headers["retry-after"]) >= 1
        health = httpx.get(f"{server.url}/health/ready")
        assert health.status_code == 503 and health.json()["models"] == {"portrait": False}
        assert httpx.get(f"{server.url}/health/live").status_code == 200

        onnx.with_suffix(".away").rename(onnx)
        wait_for(lambda: httpx.get(f"{server.url}/health/ready").status_code == 200, "the model back", pause=0.05)
        assert segment(server, smooth_jpeg(64)).status_code == 200
        (new,) = workers(server)
        assert new["pid"] != only["pid"]
        assert sample(server, "segserving_worker_restarts_total", model="portrait") == 1.0  # one death, not attempts


# ----- dynamic batching -----


def batch_histogram(server: ServerProcess) -> tuple[float, float]:
    """(count, sum) of segserving_batch_size for portrait."""
    count = sample(server, "segserving_batch_size_count", model="portrait") or 0.0
    total = sample(server, "segserving_batch_size_sum", model="portrait") or 0.0
    return count, total


def test_batches_form_under_load(tmp_path: Path, heavy_jpeg: bytes) -> None:
    sizes = [(64 + 8 * i, 48 + 12 * i) for i in range(16)]  # distinct sizes: each answer must match its own request
    images = [noise_png(h, w, seed) for seed, (h, w) in enumerate(sizes)]
    with start_server(tmp_path, "--thread", "1", "--batch_size", "8", "--request_timeout_ms", REQUEST_TIMEOUT_MS) as s:
        assert batch_histogram(s) == (0.0, 0.0)
        alone = [segment(s, image) for image in images]  # one at a time: batches of 1
        assert all(r.status_code == 200 for r in alone)
        assert batch_histogram(s) == (16.0, 16.0)
        with ThreadPoolExecutor(17) as pool:
            blocker = pool.submit(segment, s, heavy_jpeg)  # keeps the worker busy while the burst queues up
            wait_for(lambda: inflight(s) == 1 or blocker.done(), "the blocker in flight")
            burst = list(pool.map(lambda image: segment(s, image), images))
            assert blocker.result().status_code == 200
        count, total = batch_histogram(s)
        burst_batches, burst_jobs = count - 16 - 1, total - 16 - 1
        assert burst_jobs == 16
        assert burst_batches < 16, "no batch above 1 formed under load"
        assert total > count
        for (h, w), single, batched in zip(sizes, alone, burst, strict=True):
            assert batched.status_code == 200, batched.text
            assert png_size(batched.content) == (h, w)
            a = cv2.imdecode(np.frombuffer(single.content, np.uint8), cv2.IMREAD_UNCHANGED)
            b = cv2.imdecode(np.frombuffer(batched.content, np.uint8), cv2.IMREAD_UNCHANGED)
            assert np.mean(a == b) > 0.99, "a batched answer differs from the same image run alone"


def test_batch_timeout_collects_requests_into_one_batch(tmp_path: Path) -> None:
    images = [noise_png(64, 64, seed) for seed in range(4)]
    flags = ("--thread", "1", "--batch_size", "8", "--batch_timeout_ms", "1000")
    with start_server(tmp_path, *flags, "--request_timeout_ms", REQUEST_TIMEOUT_MS) as server:
        assert batch_histogram(server) == (0.0, 0.0)  # the warm-up does not go through the batcher
        barrier = threading.Barrier(len(images))

        def send(image: bytes) -> httpx.Response:
            with httpx.Client(timeout=CLIENT_TIMEOUT) as client:
                client.get(f"{server.url}/health/live")  # connect first, so the four posts leave together
                barrier.wait()
                return client.post(f"{server.url}{SEGMENT}", content=image)

        with ThreadPoolExecutor(len(images)) as pool:
            responses = list(pool.map(send, images))
        assert [r.status_code for r in responses] == [200] * 4
        assert batch_histogram(server) == (1.0, 4.0)
        assert sample(server, "segserving_batch_size_bucket", model="portrait", le="3.0") == 0.0
        assert sample(server, "segserving_batch_size_bucket", model="portrait", le="4.0") == 1.0


# ----- a model that cannot load -----


def broken_copy(tmp_path: Path, corrupt: str) -> Path:
    entry = tmp_path / "broken" / "portrait"
    shutil.copytree(PORTRAIT / "serving_server", entry / "serving_server")
    shutil.copytree(PORTRAIT / "serving_client", entry / "serving_client")
    (entry / "serving_server" / corrupt).write_bytes(b"this is not a model file" * 100)
    return entry


@pytest.mark.parametrize(("engine", "corrupt"), [("onnxruntime", "model.onnx"), ("paddle", "model.json")])
def test_model_that_fails_to_load_stops_the_server(tmp_path: Path, engine: str, corrupt: str) -> None:
    entry = broken_copy(tmp_path, corrupt)
    with start_server(tmp_path, "--model", entry, "--engine", engine, "--thread", "1", wait=False) as server:
        code = server.process.wait(timeout=CLIENT_TIMEOUT)
    assert code not in (0, None), server.log()[-3000:]
    errors = [line for line in server.log().splitlines() if " ERROR server" in line]
    assert errors, server.log()[-3000:]
    assert f"model 'portrait' failed to load from {entry / 'serving_server'}" in errors[0]
    if engine == "onnxruntime":
        assert "model.onnx" in errors[0]
    assert "ready: serving" not in server.log()

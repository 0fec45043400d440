"""Overload end to end: full queue (429 / RESOURCE_EXHAUSTED), shedding before the body is read and before work
that would miss its deadline, deadlines (504 / DEADLINE_EXCEEDED) and not ready while loading (503 / UNAVAILABLE),
against real server processes (bodies over --max_body_size: test_body_limits.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
from overload_support import (
    CLIENT_TIMEOUT,
    PADDLE,
    SEGMENT,
    V2,
    answered,
    grpc_call,
    grpc_error,
    head,
    post,
    raw_exchange,
    sample,
    small_png,
    smooth_jpeg,
    stopped,
    tensor_json,
    tensor_request,
    v2_json,
    wait_for,
    worker_pid,
)
from servers import ServerProcess, start_server

from segcore.proto.general_model_service_pb2 import Response

# ----- 429: the queue is full -----


@pytest.fixture(scope="module")
def queue_server(module_tmp: Path):
    flags = ("--thread", "1", "--max_queue", "1", "--batch_size", "1", "--request_timeout_ms", "60000")
    with start_server(module_tmp, *flags) as server:
        yield server


@pytest.fixture(scope="module")
def heavy() -> bytes:
    return smooth_jpeg(6000)


def test_full_queue_answers_429_with_retry_after(queue_server: ServerProcess, heavy: bytes) -> None:
    server = queue_server
    request = tensor_request()
    with ThreadPoolExecutor(3) as pool:
        # one runs, one waits in the worker's socket (pipeline depth 2), one fills the queue of 1
        blockers = [pool.submit(post, server, SEGMENT, heavy) for _ in range(3)]
        wait_for(lambda: sample(server, "segserving_queue_depth", model="portrait") == 1.0, "a full queue")
        image = post(server, SEGMENT, small_png())
        paddle_json = post(server, PADDLE, tensor_json(request), **{"content-type": "application/json"})
        error = grpc_error(server, request)
        statuses = [f.result().status_code for f in blockers]
    assert image.status_code == 429, image.text
    assert int(image.headers["retry-after"]) >= 1
    assert int(image.headers["retry-after-ms"]) >= 1  # the precise hint the SDK uses
    assert "queue is full" in image.json()["error"]
    assert paddle_json.status_code == 429
    assert int(paddle_json.headers["retry-after"]) >= 1
    assert paddle_json.json()["err_no"] == 429 and "queue is full" in paddle_json.json()["err_msg"]
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in error.details()
    assert int(dict(error.trailing_metadata())["retry-after-ms"]) >= 1
    assert statuses == [200, 200, 200], "work accepted before the queue filled must still complete"
    assert answered(server, "image", 429) == 1.0
    assert answered(server, "http-json", 429) == 1.0
    assert answered(server, "grpc", 429) == 1.0
    # the queue drained: the same requests are served again
    assert post(server, SEGMENT, small_png()).status_code == 200
    assert Response.FromString(grpc_call(server, request)).err_no == 0


def test_grpc_client_deadline_ends_the_call(queue_server: ServerProcess) -> None:
    server = queue_server
    request = tensor_request()
    before = {status: answered(server, "grpc", status) for status in (200, 500, 504)}
    with stopped(worker_pid(server)):
        # nothing is ahead, so the call is admitted; the frozen worker cannot answer within the client's 0.5 s
        error = grpc_error(server, request, timeout=0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: sample(server, "segserving_inflight_requests") == 0.0, "the call to end on the server")
    after = {status: answered(server, "grpc", status) for status in (200, 500, 504)}
    assert after[200] == before[200], "the expired call was answered as a success"
    assert after[500] + after[504] == before[500] + before[504] + 1
    assert sample(server, "segserving_queue_depth", model="portrait") == 0.0
    assert Response.FromString(grpc_call(server, request)).err_no == 0


# ----- shedding early: before the body is read, before work that would miss its deadline -----


def test_full_queue_refuses_before_reading_the_body(queue_server: ServerProcess) -> None:
    server = queue_server
    with ThreadPoolExecutor(3) as pool, stopped(worker_pid(server)):
        blockers = [pool.submit(post, server, SEGMENT, small_png()) for _ in range(3)]  # 2 in the worker, 1 queued
        wait_for(lambda: sample(server, "segserving_queue_depth", model="portrait") == 1.0, "a full queue")
        # 1 GiB declared, 4 bytes sent: an answer at all shows the server did not wait for the body
        framing = f"Content-Length: {2**30}"
        status, headers, body = raw_exchange(server, head(SEGMENT, "image/jpeg", framing), b"\xff\xd8\xff\xe0")
        status_form, _, _ = raw_exchange(server, head(SEGMENT, "multipart/form-data; boundary=b", framing), b"--b")
    assert status == 429 and status_form == 429
    assert "queue is full" in orjson.loads(body)["error"]
    assert int(headers["retry-after"]) >= 1 and int(headers["retry-after-ms"]) >= 1
    assert [f.result().status_code for f in blockers] == [200, 200, 200]


@pytest.fixture(scope="module")
def deadline_queue_server(module_tmp: Path):
    """One worker, batches of 1, room to queue 64, and 4 s per request."""
    flags = ("--thread", "1", "--batch_size", "1", "--max_queue", "64", "--request_timeout_ms", "4000")
    with start_server(module_tmp, *flags) as server:
        yield server


def test_work_that_would_miss_its_deadline_is_refused_on_arrival(deadline_queue_server: ServerProcess,
                                                                heavy: bytes) -> None:  # fmt: skip
    server = deadline_queue_server
    for _ in range(2):  # the server learns how long a job of this size takes
        assert post(server, SEGMENT, heavy).status_code == 200
    refused_before = answered(server, "image", 429)
    with ThreadPoolExecutor(48) as pool, stopped(worker_pid(server)):
        # the frozen worker answers nothing: the backlog only grows, by far more than 4 s of work
        responses = list(pool.map(lambda _: _admission(server, heavy), range(48)))
    refused = [r for r in responses if r[0] == 429]
    admitted = [r for r in responses if r[0] != 429]
    assert refused, "nothing was refused although the backlog exceeded the deadline many times over"
    assert len(admitted) >= 2, "requests that fit the deadline must still be admitted"
    for _, headers, message in refused:
        assert "overloaded" in message and "ms of work is ahead" in message, message
        assert int(headers["retry-after-ms"]) >= 1
    assert sample(server, "segserving_queue_depth", model="portrait") <= len(admitted)
    assert answered(server, "image", 429) == refused_before + len(refused)
    wait_for(lambda: sample(server, "segserving_inflight_requests") == 0.0, "the admitted requests to end", 3000)
    assert post(server, SEGMENT, heavy).status_code == 200


def _admission(server: ServerProcess, image: bytes) -> tuple[int, dict[str, str], str]:
    """(status, headers, error message) of a request refused at once, or (0, {}, "") for one that was admitted
    and still waits for the frozen worker when the client stops waiting."""
    try:
        response = httpx.post(f"{server.url}{SEGMENT}", content=image, timeout=1.5)
    except httpx.TimeoutException:
        return 0, {}, ""  # admitted: it waits for the frozen worker
    message = response.json().get("error", "") if response.status_code != 200 else ""
    return response.status_code, dict(response.headers), message


# ----- 504: past the deadline -----


@pytest.fixture(scope="module")
def deadline_server(module_tmp: Path):
    """Requests have 1 ms: no request through a worker process fits (the port still answers /health)."""
    with start_server(module_tmp, "--thread", "1", "--request_timeout_ms", "1") as server:
        yield server


def test_request_past_its_deadline_answers_504(deadline_server: ServerProcess) -> None:
    server = deadline_server
    image = post(server, SEGMENT, smooth_jpeg(2000))
    assert image.status_code == 504, image.text
    assert "deadline" in image.json()["error"]
    paddle_json = post(server, PADDLE, tensor_json(tensor_request()), **{"content-type": "application/json"})
    assert paddle_json.status_code == 504
    assert paddle_json.json()["err_no"] == 504 and "deadline" in paddle_json.json()["err_msg"]
    proto = post(server, PADDLE, tensor_request().SerializeToString(), **{"content-type": "application/proto"})
    assert proto.status_code == 504
    assert Response.FromString(proto.content).err_no == 504
    v2 = post(server, V2, v2_json(), **{"content-type": "application/json"})
    assert v2.status_code == 504 and "deadline" in v2.json()["error"]
    assert answered(server, "image", 504) == 1.0
    assert answered(server, "http-json", 504) == 1.0
    assert answered(server, "http-proto", 504) == 1.0
    assert answered(server, "kserve-v2", 504) == 1.0


def test_grpc_past_the_server_deadline_is_deadline_exceeded(deadline_server: ServerProcess) -> None:
    error = grpc_error(deadline_server, tensor_request(), timeout=CLIENT_TIMEOUT)  # the client would wait 120 s
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "request deadline exceeded" in error.details()  # the server's message: the server gave up, not the client
    assert answered(deadline_server, "grpc", 504) == 1.0
    assert httpx.get(f"{deadline_server.url}/health/ready").status_code == 200
    log = deadline_server.log()
    assert " ERROR " not in log, "a request past its deadline is not a server error: " + log[-2000:]


# ----- 503: not ready while loading -----


def test_not_ready_while_models_load(tmp_path: Path) -> None:
    image, request = small_png(), tensor_request()
    # two Paddle Inference workers load for seconds after the port opens
    with start_server(tmp_path, "--thread", "2", "--engine", "paddle", wait=False) as server:
        seen: list[int] = []
        checked = False
        for _ in range(1200):
            try:
                health = httpx.get(f"{server.url}/health/ready", timeout=5)
            except httpx.TransportError:
                assert server.process.poll() is None, server.log()[-3000:]
                time.sleep(0.02)
                continue
            seen.append(health.status_code)
            if health.status_code == 200:
                break
            assert health.status_code == 503
            assert health.json() == {"ready": False, "draining": False, "models": {"portrait": False}}
            response = post(server, SEGMENT, image)
            error = grpc_error(server, request)
            still_loading = httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 503
            if still_loading:  # not ready before and after: both requests came in while loading
                assert response.status_code == 503, response.text
                assert "not ready" in response.json()["error"]
                assert int(response.headers["retry-after"]) >= 1
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "not ready" in error.details()  # the server's answer, not a failed connection
                checked = True
                break
        assert checked, f"never caught the server loading: {seen}"
        seen += server.wait_ready()
        assert seen[0] == 503 and seen[-1] == 200, seen
        live = httpx.get(f"{server.url}/health/live")
        assert live.status_code == 200
        assert post(server, SEGMENT, image).status_code == 200
        assert Response.FromString(grpc_call(server, request)).err_no == 0

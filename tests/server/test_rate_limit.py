"""--rate_limit: a token bucket per API key, shared by HTTP and gRPC; 429 with a retry hint beyond it."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import ServerProcess, start_server
from test_start_cli import start_cli

from client_sdk import SegClient, ServerBusy
from segcore.proto.segmentation_pb2 import SegmentRequest
from server.errors import RateLimited
from server.ratelimit import RateLimiter

KEY_A, KEY_B = "sk-rate-a-51c2", "sk-rate-b-8d07"
RATE = 0.2  # one request per 5 s per key: the test's requests all fall inside one refill
SEGMENT = "/v1/models/portrait/segment"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ----- the bucket -----


def test_a_key_bursts_to_its_rate_then_waits_for_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(4.0, clock)
    for _ in range(4):  # a full bucket: one second's worth
        limiter.check(b"a")
    with pytest.raises(RateLimited) as info:
        limiter.check(b"a")
    assert info.value.status == 429 and info.value.code == "rate_limited"
    assert info.value.retry_after == pytest.approx(0.25)
    assert "4 requests per second" in info.value.message
    limiter.check(b"b")  # each key has its own bucket
    clock.now += 0.25  # one token back
    limiter.check(b"a")
    with pytest.raises(RateLimited):
        limiter.check(b"a")
    clock.now += 60  # refills to the cap, not beyond it
    for _ in range(4):
        limiter.check(b"a")
    with pytest.raises(RateLimited):
        limiter.check(b"a")


def test_a_rate_below_one_still_allows_one_request() -> None:
    clock = Clock()
    limiter = RateLimiter(0.5, clock)
    limiter.check(b"a")
    with pytest.raises(RateLimited) as info:
        limiter.check(b"a")
    assert info.value.retry_after == pytest.approx(2.0)


# ----- a server with a limit -----


def photo() -> bytes:
    image = np.zeros((40, 40, 3), np.uint8)
    cv2.circle(image, (20, 20), 10, (200, 180, 160), -1)
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("rate")
    with start_server(tmp, "--thread", "1", "--rate_limit", str(RATE),
                      env={"SEGSERVING_API_KEYS": f"{KEY_A},{KEY_B}"}) as server:  # fmt: skip
        yield server


def limited_count(server: ServerProcess, transport: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "segserving_rate_limited_total" and sample.labels == {"transport": transport}:
                return sample.value
    return 0.0


def test_over_the_rate_an_inference_request_gets_429(limited: ServerProcess) -> None:
    url = limited.url + SEGMENT
    first = httpx.post(url, content=photo(), headers={"X-API-Key": KEY_A}, timeout=60)
    assert first.status_code == 200, first.text
    second = httpx.post(url, content=photo(), headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60)
    assert second.status_code == 429
    assert second.json()["code"] == "rate_limited" and "--rate_limit" in second.json()["error"]
    assert 1 <= int(second.headers["retry-after"]) <= 5
    assert 0 < int(second.headers["retry-after-ms"]) <= 5000
    assert limited_count(limited, "http") == 1.0
    # the other key has its own bucket; routes that run no model are not counted
    assert httpx.post(url, content=photo(), headers={"X-API-Key": KEY_B}, timeout=60).status_code == 200
    assert httpx.get(f"{limited.url}/v1/models/portrait", headers={"X-API-Key": KEY_A}).status_code == 200
    assert httpx.get(f"{limited.url}/health/ready").status_code == 200
    # a wrong key is still a 401, not a 429
    assert httpx.post(url, content=photo(), headers={"X-API-Key": "nope"}, timeout=60).status_code == 401


def test_grpc_shares_the_key_bucket(limited: ServerProcess) -> None:
    request = SegmentRequest(model="portrait", image=photo()).SerializeToString()
    with grpc.insecure_channel(limited.address) as channel:
        call = channel.unary_unary("/segserving.v1.Segmentation/Segment")
        with pytest.raises(grpc.RpcError) as info:  # KEY_A spent its token over HTTP in the test before
            call(request, timeout=60, metadata=(("x-api-key", KEY_A),))
    error = info.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailing = dict(error.trailing_metadata())
    assert trailing["segserving-error-code"] == "rate_limited"
    assert 0 < int(trailing["retry-after-ms"]) <= 5000
    assert limited_count(limited, "grpc") == 1.0


def test_the_sdk_reports_the_limit_and_does_not_wait_past_its_deadline(limited: ServerProcess) -> None:
    # KEY_B is spent too; retries are allowed, but the hint (up to 5 s) is past the client's 2 s deadline
    with SegClient(limited.address, api_key=KEY_B, timeout=2.0) as client, pytest.raises(ServerBusy) as info:
        client.segment(photo())
    assert info.value.code == "rate_limited" and info.value.status == 429
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 5


def test_a_rate_limit_needs_keys() -> None:
    alone = start_cli("--rate_limit", "5")
    assert alone.returncode == 2 and "--rate_limit is per API key" in alone.stderr
    negative = start_cli("--rate_limit", "-1")
    assert negative.returncode == 2 and "--rate_limit must be >= 0" in negative.stderr

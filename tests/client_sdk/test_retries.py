"""Retries on the server's real overload (429 + Retry-After) and not-ready (503) answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sdk_support import encoded, photo_bgr, photo_rgb
from servers import ServerProcess, start_server

from client_sdk import AsyncSegClient, SegClient, SegResult, ServerBusy, Unavailable

BIG = (2000, 1500)
REQUESTS = 12
ROUNDS = 5  # overload rounds tried before giving up on seeing a 429


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return encoded(photo_rgb(*BIG), "JPEG")


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One worker, one batch slot, one queued request: concurrent large images overflow it."""
    flags = ("--thread", "1", "--max_queue", "1", "--batch_size", "1")
    with start_server(tmp_path_factory.mktemp("sdk-tight"), *flags) as srv:
        yield srv


def _overload(client: SegClient, image: bytes) -> list[object]:
    """Fire REQUESTS concurrent requests, up to ROUNDS times, until some are refused as busy."""
    results: list[object] = []
    for _ in range(ROUNDS):
        results = list(client.segment_batch([image] * REQUESTS, concurrency=REQUESTS, progress=False))
        if any(isinstance(r, ServerBusy) for r in results):
            break
    return results


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_without_retries_overload_raises_server_busy(tight: ServerProcess, big_jpeg: bytes, protocol: str) -> None:
    with SegClient(tight.address, protocol=protocol, retries=0, timeout=120) as client:  # type: ignore[arg-type]
        results = _overload(client, big_jpeg)
        busy = [r for r in results if isinstance(r, ServerBusy)]
        assert busy, "no request was refused with 429"
        assert all(isinstance(r, SegResult | ServerBusy) for r in results), results
        assert any(isinstance(r, SegResult) for r in results)
        for error in busy:
            assert error.status == 429
            assert "queue is full" in error.message
            # the server's precise hint: Retry-After-Ms over HTTP, retry-after-ms trailing metadata over gRPC
            assert error.retry_after is not None and 0 < error.retry_after < 60
        with pytest.raises(ServerBusy):  # segment() raises it (the batch only collects it)
            for _ in range(ROUNDS):
                _overload_single(client, big_jpeg)


def _overload_single(client: SegClient, image: bytes) -> None:
    """segment() calls from many threads at once; re-raises the first ServerBusy."""
    errors: list[BaseException] = []

    def one() -> None:
        try:
            client.segment(image)
        except ServerBusy as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_with_retries_every_request_gets_through(tight: ServerProcess, big_jpeg: bytes, protocol: str) -> None:
    refused_before = _refused(tight)
    with SegClient(tight.address, protocol=protocol, retries=10, backoff=0.05, timeout=120) as client:  # type: ignore[arg-type]
        results = client.segment_batch([big_jpeg] * REQUESTS, concurrency=REQUESTS, progress=False)
    assert all(isinstance(r, SegResult) for r in results), [type(r).__name__ for r in results]
    first = results[0]
    assert isinstance(first, SegResult) and first.size == BIG
    for result in results:
        assert isinstance(result, SegResult)
        np.testing.assert_array_equal(result.label_map, first.label_map)
    assert _refused(tight) > refused_before  # the server did refuse some of them: the retries rode it out


def _refused(server: ServerProcess) -> float:
    """How many requests the server has answered with 429 so far (its Prometheus counter, all protocols)."""
    lines = httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("segserving_requests_total{") and 'status="429"' in line)  # fmt: skip


def test_async_client_retries_overload(tight: ServerProcess, big_jpeg: bytes) -> None:
    async def main() -> list[object]:
        async with AsyncSegClient(tight.address, retries=10, backoff=0.05, timeout=120) as client:
            return await client.segment_batch([big_jpeg] * REQUESTS, concurrency=REQUESTS, progress=False)

    results = asyncio.run(main())
    assert all(isinstance(r, SegResult) and r.size == BIG for r in results), results


# ----- 503 while the model loads -----
def _answers(server: ServerProcess) -> int | None:
    try:
        return httpx.get(f"{server.url}/health/ready", timeout=5).status_code
    except httpx.TransportError:
        return None


def test_unavailable_while_the_model_loads(tmp_path: Path) -> None:
    """retries=0 against a server that answers but has not finished loading: Unavailable with the server's 503."""
    image = photo_bgr(160, 120)
    for attempt in range(3):  # a fresh server each time the window was missed
        folder = tmp_path / f"try{attempt}"
        folder.mkdir()
        with start_server(folder, "--thread", "1", "--engine", "paddle", wait=False) as srv:
            deadline = time.monotonic() + 120
            while _answers(srv) is None and time.monotonic() < deadline:  # the port opens before the model loads
                assert srv.process.poll() is None, srv.log()[-2000:]
                time.sleep(0.02)
            for protocol in ("http", "grpc"):
                with SegClient(srv.address, protocol=protocol, retries=0, timeout=30) as client:  # type: ignore[arg-type]
                    try:
                        client.segment(image)
                    except Unavailable as exc:
                        assert exc.status == 503
                        assert "not ready" in exc.message
                        if protocol == "grpc":
                            return
                        continue
                    # it succeeded: only possible when the server was ready by then
                    assert _answers(srv) == 200
                    break
    pytest.skip("the server was ready before a request could reach it while loading (3 tries)")


def test_retries_ride_out_startup(tmp_path: Path) -> None:
    """A client with retries that starts before the server even listens gets its answer once the model is up."""
    image = photo_bgr(160, 120)
    results: dict[str, object] = {}
    with start_server(tmp_path, "--thread", "1", "--engine", "paddle", wait=False) as srv:

        def call(protocol: str) -> None:
            try:
                with SegClient(srv.address, protocol=protocol, retries=12, backoff=0.05, timeout=30) as client:  # type: ignore[arg-type]
                    results[protocol] = client.segment(image)
            except Exception as exc:  # reported below
                results[protocol] = exc

        threads = [threading.Thread(target=call, args=(p,)) for p in ("http", "grpc")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert srv.process.poll() is None, srv.log()[-2000:]
    for protocol in ("http", "grpc"):
        result = results.get(protocol)
        assert isinstance(result, SegResult), f"{protocol}: {result!r}"
        assert result.size == (160, 120)

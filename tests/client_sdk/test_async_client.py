"""AsyncSegClient over HTTP and gRPC against a real server: the same answers as the blocking client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sdk_support import encoded, photo_bgr, photo_rgb, truncated_jpeg
from servers import ServerProcess, start_server

from client_sdk import AsyncSegClient, InvalidInput, ModelNotFound, SegClient, SegResult

W, H = 301, 199
PROTOCOLS = ("http", "grpc")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-async"), "--thread", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(server: ServerProcess) -> SegResult:
    with SegClient(server.address) as client:
        return client.segment(photo_bgr(W, H), probability=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_segment(server: ServerProcess, reference: SegResult, protocol: str) -> None:
    async def main() -> tuple[SegResult, SegResult]:
        async with AsyncSegClient(server.address, protocol=protocol, timeout=60) as client:  # type: ignore[arg-type]
            return (await client.segment(photo_bgr(W, H), probability=True),
                    await client.segment(photo_rgb(W, H), rgb=True))  # fmt: skip

    with_prob, from_rgb = asyncio.run(main())
    assert with_prob.label_map.shape == (H, W)
    np.testing.assert_array_equal(with_prob.label_map, reference.label_map)
    np.testing.assert_array_equal(from_rgb.label_map, reference.label_map)
    assert with_prob.probability is not None and reference.probability is not None
    np.testing.assert_array_equal(with_prob.probability, reference.probability)
    assert with_prob.class_names == ["background", "person"] and with_prob.probability_class == 1
    assert from_rgb.probability is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_segment_batch_order_and_failures(server: ServerProcess, reference: SegResult, protocol: str,
                                          tmp_path: Path) -> None:  # fmt: skip
    sizes = [(W, H), (64, 128), (400, 300), (90, 90)]
    images: list[object] = [
        photo_bgr(*sizes[0]),
        encoded(photo_rgb(*sizes[1]), "PNG"),
        truncated_jpeg(),
        tmp_path / "missing.png",
        photo_bgr(*sizes[2]),
        encoded(photo_rgb(*sizes[3]), "JPEG"),
    ]

    async def main() -> list[object]:
        async with AsyncSegClient(server.address, protocol=protocol, timeout=60) as client:  # type: ignore[arg-type]
            return await client.segment_batch(images, concurrency=3, progress=False)  # type: ignore[arg-type]

    results = asyncio.run(main())
    assert len(results) == len(images)
    ok = [r for r in results if isinstance(r, SegResult)]
    assert [r.size for r in ok] == sizes
    assert isinstance(results[2], InvalidInput) and results[2].status == 400  # the server refused it
    assert isinstance(results[3], InvalidInput) and "missing.png" in results[3].message
    assert isinstance(results[0], SegResult)
    np.testing.assert_array_equal(results[0].label_map, reference.label_map)


@pytest.mark.parametrize("concurrency", [1, 6])
def test_segment_batch_concurrency_and_progress(server: ServerProcess, reference: SegResult, concurrency: int,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    async def main() -> list[object]:
        async with AsyncSegClient(server.address, timeout=60) as client:
            return await client.segment_batch([photo_bgr(W, H)] * 5, concurrency=concurrency)

    results = asyncio.run(main())
    for result in results:
        assert isinstance(result, SegResult)
        np.testing.assert_array_equal(result.label_map, reference.label_map)
    assert "5/5" in capsys.readouterr().err


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_are_typed(server: ServerProcess, protocol: str) -> None:
    async def main() -> None:
        async with AsyncSegClient(server.address, protocol=protocol, retries=0) as client:  # type: ignore[arg-type]
            with pytest.raises(ModelNotFound, match="portrait"):
                await client.segment(photo_bgr(64, 64), model="nope")
            with pytest.raises(InvalidInput) as refused:
                await client.segment(truncated_jpeg())
            assert refused.value.status == 400
            assert isinstance(await client.segment(photo_bgr(64, 64)), SegResult)  # the client still works

    asyncio.run(main())


def test_many_concurrent_requests_on_one_client(server: ServerProcess, reference: SegResult) -> None:
    async def main() -> list[SegResult]:
        async with AsyncSegClient(server.address, protocol="grpc", timeout=60) as client:
            return list(await asyncio.gather(*(client.segment(photo_bgr(W, H)) for _ in range(8))))

    for result in asyncio.run(main()):
        np.testing.assert_array_equal(result.label_map, reference.label_map)

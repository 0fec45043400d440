"""SegClient, AsyncSegClient and Client across two live servers: calls balanced between them, and when one drains
and stops, every call still answered by the other (no retries: the failover alone)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sdk_support import photo_bgr
from servers import ServerProcess, free_port, start_server

from client_sdk import AsyncSegClient, Client, SegClient, Unavailable

PHOTO = photo_bgr(160, 120)
CONF = Path(__file__).resolve().parents[2] / "serving_models/portrait/serving_client/serving_client_conf.prototxt"


@pytest.fixture
def two(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with start_server(tmp_path / "a", "--thread", "1") as a, start_server(tmp_path / "b", "--thread", "1") as b:
        yield [a, b]


def answered(server: ServerProcess, route: str = "image") -> int:
    """Requests the server answered 200 on `route`'s protocol, from its /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    pattern = rf'segserving_requests_total{{model="portrait",protocol="{route}",status="200"}} (\S+)'
    found = re.search(pattern, text)
    return int(float(found.group(1))) if found else 0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_seg_client_balances_and_fails_over(two: list[ServerProcess], protocol: str) -> None:
    route = "image" if protocol == "http" else "grpc-image"
    with SegClient([s.address for s in two], protocol=protocol, retries=0) as client:  # type: ignore[arg-type]
        expected = client.segment(PHOTO).label_map
        for _ in range(5):
            np.testing.assert_array_equal(client.segment(PHOTO).label_map, expected)
        counts = [answered(s, route) for s in two]
        assert counts == [3, 3], counts
        assert two[0].stop() == 0  # drained and gone: the client must not lose a call
        for _ in range(6):
            np.testing.assert_array_equal(client.segment(PHOTO).label_map, expected)
    assert answered(two[1], route) == 9


def test_async_client_balances_and_fails_over(two: list[ServerProcess]) -> None:
    async def run() -> list[int]:
        async with AsyncSegClient([s.address for s in two], retries=0, balance="least_outstanding") as client:
            await asyncio.gather(*(client.segment(PHOTO) for _ in range(8)))
            spread = [answered(s) for s in two]
            two[1].stop()
            results = await asyncio.gather(*(client.segment(PHOTO) for _ in range(4)))
            assert all(r.label_map.shape == (120, 160) for r in results)
            return spread

    spread = asyncio.run(run())
    assert sum(spread) == 8 and min(spread) >= 2, spread  # both took a share of the concurrent calls
    assert answered(two[0]) == spread[0] + 4


def test_paddle_client_takes_a_list_of_endpoints(two: list[ServerProcess]) -> None:
    client = Client([s.address for s in two], retries=0)
    client.load_client_config(str(CONF))
    image = np.random.default_rng(1).random((3, 256, 256), dtype=np.float32)
    for _ in range(4):
        client.predict({"image": image}, fetch=["fetch_name_0"])
    client.release()
    assert [answered(s, "http-proto") for s in two] == [2, 2]


def test_every_server_down_is_unavailable() -> None:
    down = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    with SegClient(down, retries=0) as client, pytest.raises(Unavailable):
        client.segment(PHOTO)
    with pytest.raises(ValueError, match="at least one endpoint"):
        SegClient([])

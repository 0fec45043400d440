"""gzip request bodies: inflated within --max_body_size, refused (413) past it without inflating more than the
limit, and malformed or truncated streams refused (400)."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from server.errors import InvalidInput, TooLarge
from server.workers.handler import gunzip

LIMIT = 8 * 2**20


def bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([packer.compress(bytes(2**20)) for _ in range(inflated // 2**20)] + [packer.flush()])


def test_a_body_within_the_limit_comes_back_whole() -> None:
    data = bytes(range(256)) * 20_000  # 5 MB
    assert gunzip(gzip.compress(data), LIMIT) == data
    assert gunzip(gzip.compress(b""), LIMIT) == b""


def test_an_honest_bomb_is_refused_from_its_trailer_after_one_step() -> None:
    body = bomb(64 * 2**20)
    tracemalloc.start()
    with pytest.raises(TooLarge, match="inflates past the server's limit of 8388608 bytes"):
        gunzip(body, LIMIT)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * 2**20  # one inflated step


def test_a_bomb_with_a_forged_trailer_costs_at_most_the_limit() -> None:
    body = bytearray(bomb(64 * 2**20))
    body[-4:] = (1000).to_bytes(4, "little")  # claims 1000 bytes inflated
    tracemalloc.start()
    with pytest.raises(TooLarge):
        gunzip(bytes(body), LIMIT)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= LIMIT + 4 * 2**20  # the inflated steps kept until the limit, plus one step in flight


@pytest.mark.parametrize(("body", "problem"), [
    (b"not gzip at all, just bytes", "not valid gzip"),
    (b"\x1f\x8b\x08\x00not really gzip", "not valid gzip"),  # its last 4 bytes read as a huge size
    (gzip.compress(b"x" * 100_000)[:40], "truncated"),
])  # fmt: skip
def test_malformed_gzip_is_invalid_input(body: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        gunzip(body, LIMIT)

"""--rate_limit: requests per second per API key, as a token bucket. Each key's bucket holds up to one second's
worth of requests (at least one) and refills continuously, so a key may burst to its rate and no further; beyond
it the caller gets 429 with the time until its next token. Only accepted keys have buckets, so their number is
bounded by the keys configured."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """`rate` requests per second per identity (a key's digest)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[bytes, _Bucket] = field(default_factory=dict)

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate)

    def check(self, identity: bytes) -> None:
        """Take one token from `identity`'s bucket; RateLimited (with the wait for the next token) if empty."""
        now = self.clock()
        bucket = self._buckets.setdefault(identity, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = (1.0 - bucket.tokens) / self.rate
        raise RateLimited(f"rate limit of {self.rate:g} requests per second for this API key exceeded "
                          f"(--rate_limit)", retry_after=wait)  # fmt: skip

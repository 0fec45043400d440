"""When the SDK sends a refused request again: only on 429 (busy) and 503 (unavailable), with jittered exponential
backoff that honours the server's hint, a bounded number of times, and never past the call's own deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from client_sdk.errors import SegServingError, ServerBusy, Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts at most; the n-th wait is backoff * 2**n (capped at max_backoff) scaled by a random
    factor in [0.5, 1), added to the server's Retry-After hint when it gave one, so refused clients spread out
    instead of coming back in waves."""

    retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 5.0

    @staticmethod
    def retryable(error: SegServingError) -> bool:
        return isinstance(error, ServerBusy | Unavailable)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
        jitter = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        return (retry_after or 0.0) + jitter

    def wait(self, error: SegServingError, attempt: int, remaining: float) -> float | None:
        """How long to wait before trying again after `error`, or None when the error is final: not retryable,
        out of attempts, or the wait would reach the deadline (`remaining` seconds away)."""
        if not self.retryable(error) or attempt >= self.retries:
            return None
        delay = self.delay(attempt, error.retry_after if isinstance(error, ServerBusy) else None)
        return delay if delay < remaining else None


def with_retries(call: Callable[[float], T], policy: RetryPolicy, timeout: float) -> T:
    """`call(seconds_left)` until it succeeds, the error is final, or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    for attempt in range(policy.retries + 1):
        try:
            return call(deadline - time.monotonic())
        except SegServingError as error:
            wait = policy.wait(error, attempt, deadline - time.monotonic())
            if wait is None:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt's error is final")


async def with_retries_async(call: Callable[[float], Awaitable[T]], policy: RetryPolicy, timeout: float) -> T:
    """with_retries for coroutines."""
    deadline = time.monotonic() + timeout
    for attempt in range(policy.retries + 1):
        try:
            return await call(deadline - time.monotonic())
        except SegServingError as error:
            wait = policy.wait(error, attempt, deadline - time.monotonic())
            if wait is None:
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last attempt's error is final")

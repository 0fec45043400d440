"""client_sdk.retry: what is retried, how long the SDK waits, and that its own deadline bounds every attempt
and every wait (the end-to-end retries against a real overloaded server are in test_retries.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from client_sdk import InvalidInput, ServerBusy, Unavailable
from client_sdk.errors import error_for_grpc
from client_sdk.retry import RetryPolicy, with_retries, with_retries_async
from client_sdk.transport import retry_after


class Script:
    """A call that fails with the given errors in turn, then returns "ok"; records the time left it was given."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.budgets: list[float] = []

    def __call__(self, left: float) -> str:
        self.budgets.append(left)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def call_async(self, left: float) -> str:
        return self(left)


def busy(hint: float | None = None) -> ServerBusy:
    return ServerBusy("queue is full", retry_after=hint)


def test_busy_and_unavailable_are_retried_until_success() -> None:
    script = Script(busy(0.001), Unavailable("not ready", 503), busy())
    assert with_retries(script, RetryPolicy(retries=3, backoff=0.001), timeout=30) == "ok"
    assert len(script.budgets) == 4


def test_other_errors_are_final() -> None:
    script = Script(InvalidInput("bad image", 400))
    with pytest.raises(InvalidInput):
        with_retries(script, RetryPolicy(retries=5, backoff=0.001), timeout=30)
    assert len(script.budgets) == 1


def test_retries_are_bounded_in_number() -> None:
    script = Script(*[busy(0.001) for _ in range(10)])
    with pytest.raises(ServerBusy):
        with_retries(script, RetryPolicy(retries=2, backoff=0.001), timeout=30)
    assert len(script.budgets) == 3


def test_a_wait_past_the_deadline_ends_the_retries_at_once() -> None:
    script = Script(busy(hint=60.0))  # the server asks for a minute; the caller has 2 s
    with pytest.raises(ServerBusy):
        with_retries(script, RetryPolicy(retries=5), timeout=2.0)
    assert len(script.budgets) == 1


def test_each_attempt_gets_what_is_left_of_the_deadline() -> None:
    script = Script(busy(0.05), busy(0.05))
    with_retries(script, RetryPolicy(retries=3, backoff=0.001), timeout=10.0)
    first, second, third = script.budgets
    assert 10.0 >= first > second > third
    assert first - third >= 0.1  # the waits honoured both hints


def test_async_retries_follow_the_same_policy() -> None:
    script = Script(busy(0.001), busy(hint=60.0))
    with pytest.raises(ServerBusy):
        asyncio.run(with_retries_async(script.call_async, RetryPolicy(retries=5, backoff=0.001), timeout=5.0))
    assert len(script.budgets) == 2


def test_delay_adds_jittered_exponential_backoff_to_the_hint() -> None:
    policy = RetryPolicy(retries=5, backoff=0.1, max_backoff=0.3)
    for attempt, step in [(0, 0.1), (1, 0.2), (2, 0.3), (4, 0.3)]:  # capped at max_backoff
        delays = [policy.delay(attempt, retry_after=0.5) for _ in range(200)]
        assert all(0.5 + step / 2 <= d < 0.5 + step for d in delays)
        assert len(set(delays)) > 100  # spread, so refused clients do not come back together


def test_server_hints_are_read_from_headers_and_grpc_metadata() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "1", "Retry-After-Ms": "37"})) == pytest.approx(0.037)
    assert retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None  # a proxy's date
    assert retry_after(httpx.Headers({})) is None
    error = error_for_grpc("RESOURCE_EXHAUSTED", "queue is full",
                           {"segserving-error-code": "busy", "retry-after-ms": "250"})  # fmt: skip
    assert isinstance(error, ServerBusy) and error.retry_after == pytest.approx(0.25)

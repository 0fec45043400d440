"""`client_sdk.endpoints.Router`: round-robin, weighted variants, cooldown after a failure, and its refusals."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from client_sdk import endpoints
from client_sdk.endpoints import Router, failover, failover_async
from client_sdk.errors import InvalidInput, Unavailable


def test_one_variant_rotates_through_its_endpoints() -> None:
    router = Router()
    router.add("t", ["a:1", "b:2", "c:3"])
    firsts = [router.plan()[0] for _ in range(6)]
    assert firsts == [("t", "a:1"), ("t", "b:2"), ("t", "c:3")] * 2
    assert router.plan() == [("t", "a:1"), ("t", "b:2"), ("t", "c:3")]  # the rest follow, for failover


def test_a_failed_endpoint_goes_last_until_its_cooldown_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: now[0])
    router = Router()
    router.add("t", ["a:1", "b:2"])
    router.failed("a:1")
    assert [e for _, e in router.plan()] == ["b:2", "a:1"]
    assert [e for _, e in router.plan()] == ["b:2", "a:1"]
    now[0] += endpoints.COOLDOWN_S + 0.01
    assert sorted(e for _, e in router.plan()) == ["a:1", "b:2"]
    router.failed("a:1")
    router.failed("a:1")  # three failures in a row: the pause doubled twice
    now[0] += 2 * endpoints.COOLDOWN_S + 0.01
    assert router.plan()[-1][1] == "a:1"  # still cooling down (4 s)
    router.succeeded("a:1")  # it answered (tried last, as nothing else did): back in the rotation at once
    assert sorted(router.plan()[0][1] for _ in range(2)) == ["a:1", "b:2"]


def test_cooldown_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: 0.0)
    router = Router()
    router.add("t", ["a:1"])
    router.add("u", ["b:1"])
    for _ in range(20):
        router.failed("a:1")
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: endpoints.MAX_COOLDOWN_S - 0.01)
    assert router.plan()[-1][1] == "a:1"
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: endpoints.MAX_COOLDOWN_S + 0.01)
    assert sorted(router.plan()[0][1] for _ in range(50)) != ["b:1"] * 50  # back after at most MAX_COOLDOWN_S


def test_variants_share_traffic_by_weight_and_fail_over_to_each_other() -> None:
    router = Router(random.Random(3))
    router.add("small", ["s:1"], 10)
    router.add("large", ["l:1", "l:2"], 90)
    tags = Counter(router.plan()[0][0] for _ in range(2000))
    assert 0.07 < tags["small"] / 2000 < 0.13
    plan = router.plan()
    assert {t for t, _ in plan} == {"small", "large"} and len(plan) == 3  # every endpoint, once


def test_an_endpoint_in_two_variants_is_tried_once() -> None:
    router = Router()
    router.add("a", ["x:1", "y:1"])
    router.add("b", ["y:1"])
    assert sorted(e for _, e in router.plan()) == ["x:1", "y:1"]


@pytest.mark.parametrize(
    ("tag", "addresses", "weight", "message"),
    [("t", [], 1, "at least one endpoint"), ("t", ["a:1"], 0, "must be positive"), ("t", ["a:1"], -5, "positive")],
)
def test_refuses_empty_variants_and_bad_weights(tag: str, addresses: list[str], weight: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Router().add(tag, addresses, weight)


def test_refuses_a_tag_twice_and_planning_before_any_variant() -> None:
    router = Router()
    with pytest.raises(RuntimeError, match="connect"):
        router.plan()
    router.add("t", ["a:1"])
    with pytest.raises(ValueError, match="already added"):
        router.add("t", ["b:1"])


def test_least_outstanding_prefers_the_endpoint_with_the_fewest_calls_in_flight() -> None:
    router = Router(policy="least_outstanding")
    router.add("t", ["a:1", "b:1", "c:1"])
    for address in ("a:1", "a:1", "b:1"):
        router.started(address)
    assert [e for _, e in router.plan()] == ["c:1", "b:1", "a:1"]
    router.finished("a:1")
    router.finished("a:1")
    assert router.plan()[-1][1] == "b:1"
    with pytest.raises(ValueError, match="policy"):
        Router(policy="random")  # type: ignore[arg-type]


def test_failover_moves_past_unreachable_endpoints_only() -> None:
    router = Router()
    router.add("t", ["a:1", "b:1"])
    tried: list[str] = []

    def send(endpoint: str, left: float) -> str:
        tried.append(endpoint)
        if endpoint == "a:1":
            raise Unavailable("cannot reach a:1")
        return f"answer from {endpoint}"

    assert failover(router, send, 5.0) == ("answer from b:1", "t")
    assert tried == ["a:1", "b:1"] and router.plan()[-1][1] == "a:1"  # a:1 now cools down

    def refuse(endpoint: str, left: float) -> str:
        tried.append(endpoint)
        raise InvalidInput("bad image")

    tried.clear()
    with pytest.raises(InvalidInput):  # the request's own fault: no other endpoint would answer differently
        failover(router, refuse, 5.0)
    assert tried == ["b:1"]
    assert all(router._by_address[a].in_flight == 0 for a in ("a:1", "b:1"))


def test_failover_async_and_every_endpoint_down() -> None:
    router = Router()
    router.add("t", ["a:1", "b:1"])

    async def down(endpoint: str, left: float) -> str:
        raise Unavailable(f"cannot reach {endpoint}")

    with pytest.raises(Unavailable, match="cannot reach"):
        asyncio.run(failover_async(router, down, 5.0))

"""Which server a client sends each request to: weighted variants (Paddle Serving's A/B `add_variant`),
round-robin or least-outstanding over each variant's endpoints, and endpoints that could not be reached (or
answered 503) sitting out a growing cooldown while the others take their traffic; `failover` / `failover_async`
run one call across them."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from client_sdk.errors import Timeout, Unavailable

T = TypeVar("T")
Policy = Literal["round_robin", "least_outstanding"]
POLICIES = ("round_robin", "least_outstanding")

COOLDOWN_S = 1.0  # the first pause of an endpoint that could not be reached; doubled each time, up to MAX
MAX_COOLDOWN_S = 30.0


@dataclass
class _Endpoint:
    address: str
    down_until: float = 0.0  # time.monotonic() before which it is only tried when nothing else is up
    failures: int = 0
    in_flight: int = 0  # calls sent to it and not answered yet


@dataclass
class Variant:
    """A named group of endpoints and its share of the traffic."""

    tag: str
    endpoints: list[_Endpoint]
    weight: float
    next: int = field(default=0)  # round-robin position


class Router:
    """Thread-safe choice of endpoints for one request: `plan()` lists (tag, endpoint) in the order to try them;
    the caller reports `failed(endpoint)` when one could not be reached and `succeeded(endpoint)` when it answered."""

    def __init__(self, rng: random.Random | None = None, policy: Policy = "round_robin") -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy = policy
        self._variants: list[Variant] = []
        self._by_address: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def add(self, tag: str, endpoints: list[str], weight: float = 100.0) -> None:
        """Add variant `tag` serving `endpoints` with relative `weight` (ValueError for none or a bad weight)."""
        if not endpoints:
            raise ValueError(f"variant {tag!r} needs at least one endpoint")
        if not weight > 0:
            raise ValueError(f"variant {tag!r}: the weight must be positive, got {weight!r}")
        if any(v.tag == tag for v in self._variants):
            raise ValueError(f"variant {tag!r} was already added")
        with self._lock:
            nodes = [self._by_address.setdefault(a, _Endpoint(a)) for a in endpoints]
            self._variants.append(Variant(tag, nodes, float(weight)))

    def clear(self) -> None:
        with self._lock:
            self._variants.clear()
            self._by_address.clear()

    def __bool__(self) -> bool:
        return bool(self._variants)

    @property
    def addresses(self) -> list[str]:
        return list(self._by_address)

    def plan(self) -> list[tuple[str, str]]:
        """(tag, endpoint) pairs for one request: a variant drawn by weight, its endpoints from the next in turn,
        then the other variants' endpoints; endpoints cooling down after a failure come last of all (tried only
        when every other one failed too)."""
        if not self._variants:
            raise RuntimeError("call connect([...]) or add_variant(...) first")
        now = time.monotonic()
        with self._lock:
            first = self._rng.choices(self._variants, weights=[v.weight for v in self._variants])[0]
            order: list[tuple[str, _Endpoint]] = []
            for variant in [first, *(v for v in self._variants if v is not first)]:
                start = variant.next % len(variant.endpoints)
                if variant is first:
                    variant.next = start + 1
                rotated = variant.endpoints[start:] + variant.endpoints[:start]
                if self.policy == "least_outstanding":  # fewest calls in flight first; the rotation breaks ties
                    rotated.sort(key=lambda e: e.in_flight)
                order.extend((variant.tag, e) for e in rotated)
            unique: dict[str, tuple[str, _Endpoint]] = {}
            for tag, node in order:  # an endpoint in several variants is tried once, under its first tag
                unique.setdefault(node.address, (tag, node))
            up = [(t, e.address) for t, e in unique.values() if e.down_until <= now]
            down = [(t, e.address) for t, e in unique.values() if e.down_until > now]
        return up + down

    def failed(self, address: str) -> None:
        """`address` could not be reached: skip it for a cooldown that doubles with each failure in a row."""
        with self._lock:
            node = self._by_address.get(address)
            if node is not None:
                node.down_until = time.monotonic() + min(MAX_COOLDOWN_S, COOLDOWN_S * 2**node.failures)
                node.failures += 1

    def started(self, address: str) -> None:
        with self._lock:
            node = self._by_address.get(address)
            if node is not None:
                node.in_flight += 1

    def finished(self, address: str) -> None:
        with self._lock:
            node = self._by_address.get(address)
            if node is not None:
                node.in_flight = max(0, node.in_flight - 1)

    def succeeded(self, address: str) -> None:
        with self._lock:
            node = self._by_address.get(address)
            if node is not None and node.failures:
                node.down_until, node.failures = 0.0, 0


def failover(router: Router, send: Callable[[str, float], T], left: float) -> tuple[T, str]:
    """(answer, variant tag) from the first endpoint in `router.plan()` that answers `send(endpoint, seconds_left)`.
    An endpoint raising Unavailable (no connection, connection lost, 503) is marked down and the call moves on to
    the next; any other error is the caller's. The last Unavailable when none answers (Timeout if time ran out
    before any was tried)."""
    deadline = time.monotonic() + left
    error: Unavailable | None = None
    for tag, endpoint in router.plan():
        remaining = deadline - time.monotonic()
        if remaining <= 0 and error is not None:
            break
        router.started(endpoint)
        try:
            answer = send(endpoint, remaining)
        except Unavailable as exc:
            router.failed(endpoint)
            error = exc
            continue
        finally:
            router.finished(endpoint)
        router.succeeded(endpoint)
        return answer, tag
    raise error or Timeout(f"no answer within {left:.3g} s")


async def failover_async(router: Router, send: Callable[[str, float], Awaitable[T]], left: float) -> tuple[T, str]:
    """failover for coroutines."""
    deadline = time.monotonic() + left
    error: Unavailable | None = None
    for tag, endpoint in router.plan():
        remaining = deadline - time.monotonic()
        if remaining <= 0 and error is not None:
            break
        router.started(endpoint)
        try:
            answer = await send(endpoint, remaining)
        except Unavailable as exc:
            router.failed(endpoint)
            error = exc
            continue
        finally:
            router.finished(endpoint)
        router.succeeded(endpoint)
        return answer, tag
    raise error or Timeout(f"no answer within {left:.3g} s")

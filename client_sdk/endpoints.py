"""Which server a Paddle Serving-style client sends each request to: weighted variants (Paddle Serving's A/B
`add_variant`), round-robin over each variant's endpoints, and endpoints that could not be reached sitting out a
growing cooldown while the others take their traffic."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

COOLDOWN_S = 1.0  # the first pause of an endpoint that could not be reached; doubled each time, up to MAX
MAX_COOLDOWN_S = 30.0


@dataclass
class _Endpoint:
    address: str
    down_until: float = 0.0  # time.monotonic() before which it is only tried when nothing else is up
    failures: int = 0


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

    def __init__(self, rng: random.Random | None = None) -> None:
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

    def succeeded(self, address: str) -> None:
        with self._lock:
            node = self._by_address.get(address)
            if node is not None and node.failures:
                node.down_until, node.failures = 0.0, 0

"""What the front and a worker say to each other on the channel, beside job batches (a list of Job one way, a
list of Result back) and the worker's first word (WorkerReady / WorkerFailed).

With --direct_http a worker serves client connections itself; it asks the front for what only the front has
(another model's workers, the HTTP routes that read the whole server's state) with a Call, reports what the
front's /metrics counts with Telemetry, and says Drained once its connections are closed after a Drain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.jobs import Job


@dataclass(frozen=True)
class SubmitCall:
    """Run `job` on `model`'s workers (a model this worker does not hold); the answer is its Result."""

    model: str
    job: Job


@dataclass(frozen=True)
class HttpCall:
    """Answer an HTTP request with the front's app (health, metrics, model info, OpenAPI...): the request as read,
    already past the worker's API-key check."""

    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client: tuple[str, int] | None


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class Call:
    """A worker's question to the front; the front answers with Reply(id, value or ServingError)."""

    id: int
    what: SubmitCall | HttpCall


@dataclass(frozen=True)
class Reply:
    id: int
    value: Any


@dataclass
class Telemetry:
    """Metric calls the worker made since its last report (method name, args), the ids of the handed-off
    connections that closed since, and how many requests it holds now."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    inflight: int = 0


@dataclass(frozen=True)
class Flush:
    """Send Telemetry now (the front is about to answer /metrics or statistics)."""


@dataclass(frozen=True)
class Drain:
    """Stop serving connections: close idle ones, answer the requests in hand with Connection: close."""


@dataclass(frozen=True)
class Drained:
    """Every handed-off connection of this worker is closed."""

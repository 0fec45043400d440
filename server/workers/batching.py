"""Dynamic batching decisions for one model, apart from the processes: a bounded queue of waiting jobs, which
of them form the next batch, and how long an idle worker holds a short batch open."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from server.errors import Busy
from server.jobs import Job, Result
from server.settings import BatchPolicy


@dataclass
class Pending:
    """A queued job and the future its caller awaits (cancelled when the caller stops waiting)."""

    job: Job
    future: asyncio.Future[Result]


class BatchQueue:
    """The jobs waiting for a worker, oldest first, within `policy.max_queue`."""

    def __init__(self, policy: BatchPolicy, model: str) -> None:
        self.policy = policy
        self.model = model
        self._items: deque[Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def waiting(self) -> int:
        """Queued jobs whose caller still waits (the others are skipped, costing no worker time)."""
        return sum(1 for pending in self._items if not pending.future.done())

    def admit(self, pending: Pending, retry_after: float) -> None:
        """Queue `pending`; Busy with the `retry_after` hint (seconds) when the queue is full."""
        if len(self._items) >= self.policy.max_queue:
            raise Busy(f"model {self.model!r} queue is full ({self.policy.max_queue})", retry_after=retry_after)
        self._items.append(pending)

    def hold_s(self, now: float, worker_idle: bool, others_idle: bool = False) -> float:
        """How long to keep the next batch open before sending it (0: send now). Only an idle worker waits, only
        while every other worker is busy (spare workers serve at once: holding would only add latency and pile
        one batch's decoding and encoding onto one process), only while the batch is short of batch_size, and at
        most batch_timeout after its oldest job arrived; a busy worker takes what is there, so it never waits on
        the front."""
        if not self._items or not worker_idle or others_idle or len(self._items) >= self.policy.batch_size:
            return 0.0
        return max(0.0, self.policy.batch_timeout_s - (now - self._items[0].job.enqueued))

    def share(self, idle_workers: int) -> int:
        """The size of the next batch when `idle_workers` workers are free: the queue split evenly between them
        (so that they decode and encode in parallel), at most batch_size."""
        if idle_workers <= 1:
            return self.policy.batch_size
        return max(1, min(self.policy.batch_size, -(-len(self._items) // idle_workers)))

    def take(self, size: int | None = None) -> list[Pending]:
        """Up to `size` (default batch_size) jobs, oldest first, skipping those whose caller no longer waits."""
        limit = min(size or self.policy.batch_size, self.policy.batch_size)
        batch: list[Pending] = []
        while self._items and len(batch) < limit:
            pending = self._items.popleft()
            if not pending.future.done():
                batch.append(pending)
        return batch

    def drain(self) -> list[Pending]:
        """Every queued job, removed from the queue."""
        items = list(self._items)
        self._items.clear()
        return items

"""A worker's event loop once its model is loaded: batches from the front and (with --direct_http) jobs from its
own client connections, run one engine batch at a time in the order they came."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from server.errors import Busy, DeadlineExceeded, ServingError
from server.jobs import Job, Result
from server.settings import BatchPolicy
from server.workers.admission import ServiceTime, admit
from server.workers.handler import JobHandler
from server.workers.telemetry import Recorder


@dataclass
class _Local:
    """A job from one of this worker's own connections, and the future its request awaits."""

    job: Job
    future: asyncio.Future[Result]


class WorkQueue:
    """The worker's jobs in arrival order: front batches (answered on the channel) and local jobs (answered
    through their futures, consecutive ones run as one batch of up to batch_size)."""

    def __init__(self, handler: JobHandler, model: str, policy: BatchPolicy, workers: int) -> None:
        self.handler = handler
        self.model = model
        self.policy = policy
        self.max_queue = max(1, policy.max_queue // max(workers, 1))  # this worker's share of --max_queue
        self.reply: Callable[[list[Result]], None] = lambda results: None  # a front batch's results, to the front
        self.recorder: Recorder | None = None
        # whether the request submitting now is the only one in hand (no other may join its batch); set by the
        # worker's HTTP server, which knows its requests
        self.alone: Callable[[], bool] = lambda: False
        self.service = ServiceTime()
        self._items: deque[list[Job] | _Local] = deque()
        self._wake = asyncio.Event()
        self._ids = itertools.count(1)
        self.closed = False

    # ----- the Submitter surface the worker's DataPlane uses -----
    @property
    def ready(self) -> bool:
        return not self.closed

    def admission(self, budget_s: float) -> None:
        """Busy when this worker's queue is full or its work ahead outlasts `budget_s` (as the front's pool)."""
        if budget_s <= 0:
            raise DeadlineExceeded("request deadline passed before it could be queued")
        waiting = self.waiting()
        if waiting >= self.max_queue:
            raise Busy(f"model {self.model!r} queue is full ({self.policy.max_queue})",
                       retry_after=self.service.retry_hint(waiting, 1))  # fmt: skip
        # a batch runs synchronously, blocking the loop: nothing is ever running while a request is admitted
        admit(self.model, self.service, waiting, 1, self.policy.batch_size, budget_s)

    async def submit(self, job: Job) -> Result:
        job.id = next(self._ids)  # the handler matches results to jobs by id
        job.enqueued = time.monotonic()
        if not self._items and self.policy.batch_timeout_s <= 0 and self.alone():
            return self._run([job])[0]  # nothing ahead, nothing to batch with: run it in the request's own task
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._items.append(_Local(job, future))
        self._wake.set()
        try:
            async with asyncio.timeout(max(job.deadline - time.monotonic(), 0.0)):
                return await future
        except TimeoutError:
            raise DeadlineExceeded(f"request deadline exceeded ({job.deadline - job.enqueued:.3f} s)") from None
        finally:
            future.cancel()

    def waiting(self) -> int:
        return sum(1 for item in self._items if isinstance(item, _Local) and not item.future.done())

    # ----- the loop -----
    def put_batch(self, jobs: list[Job]) -> None:
        self._items.append(jobs)
        self._wake.set()

    async def run(self) -> None:
        """Run items until cancelled. Each engine batch blocks the loop; between batches the loop reads the
        connections and sends the answers out."""
        while True:
            if not self._items:
                self._wake.clear()
                await self._wake.wait()
                continue
            if isinstance(self._items[0], list):
                jobs = self._items.popleft()
                assert isinstance(jobs, list)
                self.reply(self.handler.handle(jobs))
            else:
                await self._hold()
                self._run_local(self._take())
            await asyncio.sleep(0)  # the answers go out before the next batch starts

    async def _hold(self) -> None:
        """With --batch_timeout_ms, keep a short local batch open until its oldest job has waited that long."""
        first = self._items[0]
        full = self.waiting() >= self.policy.batch_size
        if self.policy.batch_timeout_s <= 0 or not isinstance(first, _Local) or full:
            return
        await asyncio.sleep(max(0.0, first.job.enqueued + self.policy.batch_timeout_s - time.monotonic()))

    def _take(self) -> list[_Local]:
        batch: list[_Local] = []
        while self._items and isinstance(self._items[0], _Local) and len(batch) < self.policy.batch_size:
            item = self._items.popleft()
            assert isinstance(item, _Local)
            if not item.future.done():  # nobody waits for the others any more
                batch.append(item)
        return batch

    def _run_local(self, batch: list[_Local]) -> None:
        if not batch:
            return
        for item, result in zip(batch, self._run([item.job for item in batch]), strict=True):
            if not item.future.done():
                item.future.set_result(result)

    def _run(self, jobs: list[Job]) -> list[Result]:
        """Run one batch of local jobs (blocking the loop), timing it for admission and the metrics."""
        started = time.monotonic()
        results = self.handler.handle(jobs)
        done = time.monotonic()
        self.service.observe(done - started, sum(1 for r in results if r.code != DeadlineExceeded.code))
        if self.recorder is not None:
            self.recorder.batch(self.model, len(jobs))
            for job, result in zip(jobs, results, strict=True):
                if result.timings:
                    queued = max(done - job.enqueued - sum(result.timings.values()), 0.0)
                    self.recorder.stages(self.model, {"queue": queued, **result.timings})
        return results

    def fail_all(self, error: ServingError) -> None:
        """The worker is stopping: every local job still queued gets `error`."""
        self.closed = True
        for item in self._items:
            if isinstance(item, _Local) and not item.future.done():
                item.future.set_exception(error)
        self._items.clear()

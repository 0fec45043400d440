"""Front-side view of one model's workers: a bounded queue, dynamic batching, dispatch, restarts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from segcore.images import ImageLimits
from server.errors import Busy, DeadlineExceeded, InternalError, ServingError, Unavailable
from server.handoff import lane_pair
from server.jobs import Job, Result
from server.memory import rss_bytes
from server.settings import BatchPolicy, ModelSettings, ServerSettings
from server.workers import channel
from server.workers.admission import ServiceTime, admit
from server.workers.batching import BatchQueue, Pending
from server.workers.lanes import Lanes
from server.workers.messages import Call, Drained, Reply, Telemetry
from server.workers.process import WorkerFailed, WorkerReady, WorkerSpec, worker_main

log = logging.getLogger("server.pool")
PIPELINE_DEPTH = 2  # batches in flight per worker: the next one waits in the socket while one runs
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class PoolObserver(Protocol):
    """Receives what a pool does, for metrics."""

    def result(self, model: str, job: Job, result: Result) -> None: ...
    def batch(self, model: str, size: int) -> None: ...
    def restart(self, model: str) -> None: ...
    def record(self, source: str, calls: list[tuple[str, tuple[Any, ...]]], inflight: int) -> None: ...


@dataclass
class _Worker:
    spec: WorkerSpec
    process: multiprocessing.process.BaseProcess | None = None
    channel: channel.Frames | None = None
    ready: WorkerReady | None = None
    batches: deque[list[Pending]] = field(default_factory=deque)
    sent: deque[float] = field(default_factory=deque)  # when each of `batches` was written to the worker
    last_done: float = 0.0  # when the worker last answered a batch
    lane: socket.socket | None = None  # with --direct_http: where its client connections go
    restart_task: asyncio.Task[None] | None = None  # set once the worker died, until it runs again
    failures: int = 0

    @property
    def usable(self) -> bool:
        """Ready, and its channel still open (a worker that just died is not sent more work)."""
        return self.ready is not None and self.channel is not None and self.channel.open


class ModelWorkers:
    """Owns N worker processes for one model and feeds them batches from one bounded queue."""

    def __init__(self, name: str, specs: list[WorkerSpec], policy: BatchPolicy, observer: PoolObserver) -> None:
        self.name = name
        self.policy = policy
        self._observer = observer
        self._workers = [_Worker(spec) for spec in specs]
        self._queue = BatchQueue(policy, name)
        self._service = ServiceTime()
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._started = asyncio.Event()
        self.lanes = Lanes()
        # with --direct_http: answers a worker's Call (set by whoever owns the server's routes)
        self.on_call: Callable[[Any], Awaitable[Any]] | None = None

    # ----- lifecycle -----
    async def start(self) -> None:
        """Start every worker; returns when all are warmed up. RuntimeError if one cannot load."""
        results = await asyncio.gather(*(self._spawn(w) for w in self._workers))
        failures = [r for r in results if r]
        if failures:
            spec = self._workers[0].spec
            raise RuntimeError(f"model {self.name!r} failed to load from {spec.model_dir}: {failures[0]}")
        self._started.set()

    async def _spawn(self, worker: _Worker) -> str | None:
        front, back = socket.socketpair()
        lane_front, lane_back = lane_pair() if worker.spec.server is not None else (None, None)
        ctx = multiprocessing.get_context("spawn")
        worker.process = ctx.Process(target=worker_main, args=(back, worker.spec, lane_back), daemon=True,
                                     name=f"worker-{self.name}-{worker.spec.index}")  # fmt: skip
        worker.process.start()
        back.close()
        if lane_back is not None:
            lane_back.close()
        worker.lane = lane_front
        loop = asyncio.get_running_loop()
        first: asyncio.Future[WorkerReady | WorkerFailed] = loop.create_future()

        def on_message(message: Any) -> None:
            if not first.done():
                first.set_result(message)
            elif isinstance(message, list):
                self._answered(worker, message)
            else:
                self._heard(worker, message)

        def on_lost(exc: Exception | None) -> None:
            if not first.done():
                first.set_exception(ConnectionError("worker channel closed"))
            elif worker.channel is frames and not self._closing:
                worker.restart_task = loop.create_task(self._on_death(worker))

        _, frames = await loop.create_connection(lambda: channel.Frames(on_message, on_lost), sock=front)
        worker.channel = frames
        try:
            message = await first
        except ConnectionError:
            message = WorkerFailed(f"worker exited with code {await self._join(worker)} while loading")
        if isinstance(message, WorkerFailed):
            await self._close(worker)
            return message.message
        worker.ready = message
        log.info("model %s worker %d ready: pid %d, engine %s on %s", self.name, worker.spec.index, message.pid,
                 message.engine, message.device)  # fmt: skip
        worker.failures = 0
        if worker.lane is not None:
            self.lanes.add(worker.spec.index, worker.lane, frames)
        self._dispatch()
        return None

    async def _join(self, worker: _Worker) -> int | None:
        assert worker.process is not None
        await asyncio.get_running_loop().run_in_executor(None, worker.process.join, 5)
        return worker.process.exitcode

    async def _close(self, worker: _Worker) -> None:
        self.lanes.remove(worker.spec.index)
        if worker.lane is not None:
            worker.lane.close()
            worker.lane = None
        frames, worker.channel, worker.ready = worker.channel, None, None
        if frames is not None and frames.transport is not None:
            frames.transport.close()
            await frames.closed
        if worker.process is not None and worker.process.is_alive():
            await self._join(worker)
            if worker.process.is_alive():
                worker.process.kill()

    async def stop(self, grace_s: float) -> None:
        """Stop taking jobs, let queued and in-flight ones finish (up to grace_s), then stop the workers; jobs
        still queued or running by then get 503."""
        self._closing = True
        deadline = time.monotonic() + grace_s
        self.lanes.drain()
        while (self._queue or any(w.batches for w in self._workers) or not self.lanes.drained) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)
        running = [pending for w in self._workers for batch in w.batches for pending in batch]
        for pending in [*self._queue.drain(), *running]:
            self._fail(pending, Unavailable("server is shutting down"))
        for worker in self._workers:
            if worker.restart_task:
                worker.restart_task.cancel()
            await self._close(worker)

    # ----- state -----
    @property
    def ready(self) -> bool:
        return self._started.is_set() and not self._closing and any(w.ready for w in self._workers)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def size(self) -> int:
        return len(self._workers)

    def worker_rss(self, index: int) -> float:
        """Resident bytes of worker `index` (0 while it is not running)."""
        ready = self._workers[index].ready
        return float(rss_bytes(ready.pid if ready else None) or 0)

    def describe(self) -> list[dict[str, object]]:
        return [{"index": w.spec.index, "ready": w.ready is not None, "pid": w.ready.pid if w.ready else None,
                 "engine": w.ready.engine if w.ready else w.spec.engine,
                 "device": w.ready.device if w.ready else None,
                 "rss_mib": round(self.worker_rss(i) / 2**20, 1), "connections": self.lanes.held(w.spec.index)}
                for i, w in enumerate(self._workers)]  # fmt: skip

    # ----- requests -----
    async def submit(self, job: Job) -> Result:
        """Queue a job and wait for its result (ServingError on overload, deadline or worker failure)."""
        if self._closing:
            raise Unavailable("server is shutting down")
        if not self.ready:
            raise Unavailable(f"model {self.name!r} is not ready", retry_after=1.0)
        job.id = next(self._ids)
        job.enqueued = time.monotonic()
        self.admission(job.deadline - job.enqueued)
        pending = Pending(job, asyncio.get_running_loop().create_future())
        self._queue.admit(pending, self._service.retry_hint(len(self._queue), self._ready_workers()))
        self._dispatch()
        # asyncio.timeout awaits the future itself: no task or shield between the worker's answer and the caller
        try:
            async with asyncio.timeout(max(job.deadline - time.monotonic(), 0.0)):
                return await pending.future
        except TimeoutError:
            raise DeadlineExceeded(f"request deadline exceeded ({job.deadline - job.enqueued:.3f} s)") from None
        finally:  # no-op once answered; else nobody waits any more (deadline, caller cancelled): skip it if queued
            pending.future.cancel()

    def admission(self, budget_s: float) -> None:
        """Busy (429, with a retry hint) if the queue is full or the work ahead would outlast `budget_s` (504 if
        that is already over): callers may ask before reading a request's body, so an overloaded server refuses
        it cheaply."""
        if budget_s <= 0:
            raise DeadlineExceeded("request deadline passed before it could be queued")
        queued, workers = len(self._queue), self._ready_workers()
        if queued >= self.policy.max_queue:
            raise Busy(f"model {self.name!r} queue is full ({self.policy.max_queue})",
                       retry_after=self._service.retry_hint(queued, workers))  # fmt: skip
        # jobs nobody waits for any more are not counted: once their deadline has passed the worker skips them
        running = sum(1 for w in self._workers for batch in w.batches for p in batch if not p.future.done())
        ahead = self._queue.waiting() + running
        admit(self.name, self._service, ahead, workers, self.policy.batch_size, budget_s)

    def _ready_workers(self) -> int:
        return sum(1 for w in self._workers if w.ready)

    def _dispatch(self) -> None:
        """Send queued jobs to the least-loaded worker with room, split evenly while several are idle. The last
        idle worker holds a short batch open until batch_timeout; a busy one gets the next batch at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            ready = [w for w in self._workers if w.usable and len(w.batches) < PIPELINE_DEPTH]
            if not ready:
                return
            worker = min(ready, key=lambda w: len(w.batches))
            idle = sum(1 for w in ready if not w.batches)
            wait = self._queue.hold_s(time.monotonic(), worker_idle=not worker.batches, others_idle=idle > 1)
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)
                return
            batch = self._queue.take(self._queue.share(idle))
            if not batch:
                return
            worker.batches.append(batch)
            worker.sent.append(time.monotonic())
            assert worker.channel is not None
            worker.channel.send([p.job for p in batch])

    def hand_off(self, fd: int, on_closed: Callable[[], None]) -> bool:
        """Give client connection `fd` to the ready worker holding the fewest (--direct_http); False when none
        can take it: the caller serves it."""
        return not self._closing and self.lanes.hand_off(fd, on_closed)

    async def collect(self) -> None:
        """Have every worker that serves HTTP itself report what it counted."""
        await self.lanes.collect()

    def _heard(self, worker: _Worker, message: Any) -> None:
        """A worker's message other than results: a Call to answer, Telemetry, Drained."""
        if isinstance(message, Telemetry):
            self._observer.record(f"{self.name}/{worker.spec.index}", message.calls, message.inflight)
            self.lanes.reported(worker.spec.index, message)
        elif isinstance(message, Call):
            asyncio.get_running_loop().create_task(self._answer_call(worker, message))
        elif isinstance(message, Drained):
            self.lanes.reported_drained(worker.spec.index)

    async def _answer_call(self, worker: _Worker, call: Call) -> None:
        try:
            if self.on_call is None:
                raise Unavailable("this server does not answer its workers' calls")
            value: Any = await self.on_call(call.what)
        except ServingError as exc:
            value = exc
        except Exception as exc:  # a failure answering one call must not leave the worker waiting forever
            log.error("model %s worker %d: call failed: %s", self.name, worker.spec.index, exc)
            value = InternalError("the server could not answer this request")
        if worker.channel is not None and worker.channel.open:
            worker.channel.send(Reply(call.id, value))

    def _answered(self, worker: _Worker, results: list[Result]) -> None:
        """A worker's results for its oldest batch: resolve the callers' futures, then send it more."""
        batch, sent, done = worker.batches.popleft(), worker.sent.popleft(), time.monotonic()
        # a worker runs its batches in order: this one started when it arrived or the last one ended;
        # jobs it skipped as past their deadline took no time, so only the others count
        worked = sum(1 for r in results if r.code != DeadlineExceeded.code)
        self._service.observe(done - max(sent, worker.last_done), worked)
        worker.last_done = done
        self._observer.batch(self.name, len(batch))
        for pending, result in zip(batch, results, strict=True):
            self._observer.result(self.name, pending.job, result)
            if not pending.future.done():
                pending.future.set_result(result)
        self._dispatch()

    async def _on_death(self, worker: _Worker) -> None:
        code = await self._join(worker)
        log.error("model %s worker %d died (exit code %s); restarting", self.name, worker.spec.index, code)
        error = InternalError(f"inference worker died (exit code {code}) while running this request")
        while worker.batches:
            for pending in worker.batches.popleft():
                self._fail(pending, error)
        worker.sent.clear()
        await self._close(worker)
        self._observer.restart(self.name)
        while not self._closing:
            message = await self._spawn(worker)
            if message is None:
                return
            delay = RESTART_BACKOFF_S[min(worker.failures, len(RESTART_BACKOFF_S) - 1)]
            worker.failures += 1
            log.error("model %s worker %d failed to restart: %s; retrying in %.1fs", self.name,
                      worker.spec.index, message, delay)  # fmt: skip
            await asyncio.sleep(delay)

    @staticmethod
    def _fail(pending: Pending, error: ServingError) -> None:
        if not pending.future.done():
            pending.future.set_exception(error)


def worker_specs(model: ModelSettings, limits: ImageLimits, max_body_size: int,
                 server: ServerSettings | None = None) -> list[WorkerSpec]:  # fmt: skip
    """One spec per worker of `model`: worker i runs on gpu_ids[i % len] (Paddle Serving's round-robin), or on the
    CPU without ids. Workers given the `server` settings serve HTTP connections too (--direct_http)."""
    specs = []
    for i in range(model.workers):
        options = model.options
        if model.gpu_ids:
            options = replace(options, device="gpu", gpu_id=model.gpu_ids[i % len(model.gpu_ids)])
        # a GPU engine picks its kernels per input shape on first use: warm every batch size the front may send
        warm = model.batch.batch_size if model.gpu_ids else 1
        specs.append(WorkerSpec(str(model.spec.server_dir), model.spec.name, model.engine, options, limits, i,
                                max_body_size, warm, server))  # fmt: skip
    return specs

"""ModelWorkers with real worker processes on the bundled model, driven without HTTP: a worker that dies (busy or
idle) fails its in-flight jobs at once, is restarted and serves again; batches form as the policy says; callers
that stop waiting neither get sent nor break the others; a full queue answers 429."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import cv2
import numpy as np
import pytest

from segcore.engines import EngineOptions
from segcore.images import ImageLimits
from segcore.repository import ModelRepository
from server.errors import Busy, DeadlineExceeded, InternalError
from server.jobs import Job, JobKind, Result
from server.settings import BatchPolicy, ModelSettings
from server.workers.pool import ModelWorkers, worker_specs

PHOTO = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8))[1].tobytes()


class Recorder:
    """A PoolObserver that keeps what the pool reports."""

    def __init__(self) -> None:
        self.ids: list[int] = []  # job ids whose result came back from a worker, in arrival order
        self.results: list[int] = []
        self.batches: list[int] = []
        self.restarts = 0

    def result(self, model: str, job: Job, result: Result) -> None:
        self.ids.append(job.id)
        self.results.append(result.status)

    def batch(self, model: str, size: int) -> None:
        self.batches.append(size)

    def restart(self, model: str) -> None:
        self.restarts += 1


def image_job(deadline_s: float = 60.0) -> Job:
    return Job(0, JobKind.IMAGE, PHOTO, deadline=time.monotonic() + deadline_s)


async def until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def started(policy: BatchPolicy, recorder: Recorder) -> AsyncIterator[tuple[ModelWorkers, int]]:
    """A started one-worker pool on the bundled portrait model (ONNX Runtime) and its worker's pid; on exit the
    worker is resumed (if a test stopped it) and the pool stopped."""
    model = ModelSettings(ModelRepository().load("portrait"), "onnxruntime", 1, options=EngineOptions())
    pool = ModelWorkers("portrait", worker_specs(model, ImageLimits(), 2**24), policy, recorder)
    await pool.start()
    pid = pool.describe()[0]["pid"]
    assert isinstance(pid, int)
    try:
        yield pool, pid
    finally:
        current = pool.describe()[0]["pid"]
        if isinstance(current, int):
            os.kill(current, signal.SIGCONT)
        await pool.stop(5.0)
    assert not pool.ready


def test_a_killed_worker_fails_its_jobs_at_once_and_is_restarted() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with started(BatchPolicy(), recorder) as (pool, pid):
            assert pool.ready and (await pool.submit(image_job())).status == 200
            os.kill(pid, signal.SIGSTOP)  # frozen: the next job is sent to it and stays in flight
            in_flight = asyncio.ensure_future(pool.submit(image_job()))
            await asyncio.sleep(0.3)
            assert not in_flight.done()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(InternalError, match="worker died") as info:
                await asyncio.wait_for(in_flight, 30)
            assert info.value.status == 500
            await until(lambda: recorder.restarts == 1 and pool.ready)
            assert pool.describe()[0]["pid"] != pid
            assert (await pool.submit(image_job())).status == 200
            assert recorder.results == [200, 200] and recorder.batches == [1, 1]

    asyncio.run(scenario())


def test_an_idle_worker_killed_is_restarted_and_serves() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with started(BatchPolicy(), recorder) as (pool, pid):
            assert (await pool.submit(image_job())).status == 200
            os.kill(pid, signal.SIGKILL)
            await until(lambda: recorder.restarts == 1 and pool.ready)
            assert pool.describe()[0]["pid"] not in (None, pid)
            assert (await pool.submit(image_job())).status == 200
            assert recorder.results == [200, 200] and recorder.restarts == 1

    asyncio.run(scenario())


def test_a_positive_timeout_holds_a_batch_open_until_full_or_timed_out() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with started(BatchPolicy(batch_size=4, batch_timeout_s=0.3), recorder) as (pool, _):
            # two jobs, short of batch_size: held open together, then sent as one when the timeout passes
            assert [r.status for r in await asyncio.gather(*(pool.submit(image_job()) for _ in range(2)))] == [200] * 2
            assert recorder.batches == [2]
        recorder = Recorder()
        async with started(BatchPolicy(batch_size=3, batch_timeout_s=600.0), recorder) as (pool, _):
            # a batch that fills up leaves at once, long before its timeout
            waiting = asyncio.gather(*(pool.submit(image_job()) for _ in range(3)))
            assert [r.status for r in await asyncio.wait_for(waiting, 60)] == [200] * 3
            assert recorder.batches == [3]

    asyncio.run(scenario())


def test_without_a_timeout_each_job_leaves_at_once() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with started(BatchPolicy(batch_size=4, batch_timeout_s=0.0), recorder) as (pool, _):
            # the first goes to the idle worker alone, the second fills its pipeline, the third waits for room
            assert [r.status for r in await asyncio.gather(*(pool.submit(image_job()) for _ in range(3)))] == [200] * 3
            assert recorder.batches == [1, 1, 1] and recorder.ids == [1, 2, 3]

    asyncio.run(scenario())


def test_callers_that_stop_waiting_are_not_sent_and_do_not_break_the_others() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with started(BatchPolicy(batch_size=1, batch_timeout_s=0.0, max_queue=8), recorder) as (pool, pid):
            os.kill(pid, signal.SIGSTOP)
            sent = [asyncio.ensure_future(pool.submit(image_job())) for _ in range(2)]  # jobs 1, 2: in flight
            late = asyncio.ensure_future(pool.submit(image_job(deadline_s=0.2)))  # job 3: queued, deadline passes
            gone, kept = (asyncio.ensure_future(pool.submit(image_job())) for _ in range(2))  # jobs 4, 5: queued
            await until(lambda: pool.queue_depth == 3)
            sent[0].cancel()  # its job is already with the worker: the answer is dropped
            gone.cancel()  # still queued: never sent
            with pytest.raises(DeadlineExceeded) as info:
                await asyncio.wait_for(late, 30)
            assert info.value.status == 504
            os.kill(pid, signal.SIGCONT)
            assert (await asyncio.wait_for(sent[1], 60)).status == 200
            assert (await asyncio.wait_for(kept, 60)).status == 200
            assert sent[0].cancelled() and gone.cancelled()
            assert recorder.ids == [1, 2, 5] and recorder.batches == [1, 1, 1]
            assert pool.queue_depth == 0 and (await pool.submit(image_job())).status == 200

    asyncio.run(scenario())


def test_a_full_queue_answers_busy_while_the_worker_is_stopped() -> None:
    async def scenario() -> None:
        async with started(BatchPolicy(1, 0.0, 2), Recorder()) as (pool, pid):
            os.kill(pid, signal.SIGSTOP)
            # two batches fill the worker's pipeline, two more fill the queue of 2: the fifth is refused
            waiting = [asyncio.ensure_future(pool.submit(image_job())) for _ in range(4)]
            await until(lambda: pool.queue_depth == 2)
            with pytest.raises(Busy, match="queue is full") as info:
                await pool.submit(image_job())
            assert info.value.status == 429 and info.value.retry_after
            os.kill(pid, signal.SIGCONT)
            assert [r.status for r in await asyncio.gather(*waiting)] == [200] * 4

    asyncio.run(scenario())

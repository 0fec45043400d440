"""ModelWorkers with real worker processes on the bundled model, driven without HTTP: a worker that dies fails
its in-flight jobs at once, is restarted, and serves again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from segcore.engines import EngineOptions
from segcore.images import ImageLimits
from segcore.repository import ModelRepository
from server.errors import Busy, InternalError
from server.jobs import Job, JobKind, Result
from server.settings import BatchPolicy, ModelSettings
from server.workers.pool import ModelWorkers, worker_specs

PHOTO = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8))[1].tobytes()


class Recorder:
    """A PoolObserver that keeps what the pool reports."""

    def __init__(self) -> None:
        self.results: list[int] = []
        self.batches: list[int] = []
        self.restarts = 0

    def result(self, model: str, job: Job, result: Result) -> None:
        self.results.append(result.status)

    def batch(self, model: str, size: int) -> None:
        self.batches.append(size)

    def restart(self, model: str) -> None:
        self.restarts += 1


def image_job() -> Job:
    return Job(0, JobKind.IMAGE, PHOTO, deadline=time.monotonic() + 60)


async def until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def test_a_killed_worker_fails_its_jobs_at_once_and_is_restarted() -> None:
    async def scenario() -> None:
        model = ModelSettings(ModelRepository().load("portrait"), "onnxruntime", 1, options=EngineOptions())
        recorder = Recorder()
        pool = ModelWorkers("portrait", worker_specs(model, ImageLimits(), 2**24), BatchPolicy(), recorder)
        await pool.start()
        try:
            assert pool.ready and (await pool.submit(image_job())).status == 200
            pid = pool.describe()[0]["pid"]
            assert isinstance(pid, int)
            os.kill(pid, signal.SIGSTOP)  # frozen: the next job is sent to it and stays in flight
            in_flight = asyncio.ensure_future(pool.submit(image_job()))
            await asyncio.sleep(0.3)
            assert not in_flight.done()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(InternalError, match="worker died"):
                await asyncio.wait_for(in_flight, 30)
            await until(lambda: recorder.restarts == 1 and pool.ready)
            new_pid = pool.describe()[0]["pid"]
            assert new_pid != pid
            assert (await pool.submit(image_job())).status == 200
            assert recorder.results == [200, 200] and recorder.batches == [1, 1]
        finally:
            await pool.stop(5.0)
        assert not pool.ready

    asyncio.run(scenario())


def test_a_full_queue_answers_busy_while_the_worker_is_stopped() -> None:
    async def scenario() -> None:
        model = ModelSettings(ModelRepository().load("portrait"), "onnxruntime", 1, options=EngineOptions())
        pool = ModelWorkers("portrait", worker_specs(model, ImageLimits(), 2**24), BatchPolicy(1, 0.0, 2), Recorder())
        await pool.start()
        pid = pool.describe()[0]["pid"]
        assert isinstance(pid, int)
        try:
            os.kill(pid, signal.SIGSTOP)
            # two batches fill the worker's pipeline, two more fill the queue of 2: the fifth is refused
            waiting = [asyncio.ensure_future(pool.submit(image_job())) for _ in range(4)]
            await asyncio.sleep(0.2)
            assert pool.queue_depth == 2
            with pytest.raises(Busy, match="queue is full"):
                await pool.submit(image_job())
            os.kill(pid, signal.SIGCONT)
            assert [r.status for r in await asyncio.gather(*waiting)] == [200] * 4
        finally:
            os.kill(pid, signal.SIGCONT)
            await pool.stop(5.0)

    asyncio.run(scenario())

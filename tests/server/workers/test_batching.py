"""The batch-forming rules of server.workers.batching, without processes or HTTP."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import Busy
from server.jobs import Job, JobKind, Result
from server.settings import BatchPolicy
from server.workers.batching import BatchQueue, Pending


def queued(policy: BatchPolicy, ages_s: list[float], now: float = 100.0) -> tuple[BatchQueue, list[Pending]]:
    """A queue holding one job per age (seconds since it was queued at `now`), oldest first."""
    loop = asyncio.new_event_loop()
    queue = BatchQueue(policy, "m")
    items = []
    for i, age in enumerate(ages_s):
        job = Job(i + 1, JobKind.IMAGE, b"x", enqueued=now - age)
        future: asyncio.Future[Result] = loop.create_future()
        items.append(Pending(job, future))
        queue.admit(items[-1], 0.1)
    loop.close()
    return queue, items


def test_batches_take_the_oldest_jobs_up_to_batch_size() -> None:
    queue, _ = queued(BatchPolicy(batch_size=3), [0.5, 0.4, 0.3, 0.2, 0.1])
    assert [p.job.id for p in queue.take()] == [1, 2, 3]
    assert [p.job.id for p in queue.take()] == [4, 5]
    assert queue.take() == [] and len(queue) == 0


def test_a_full_queue_refuses_with_busy_and_a_retry_hint() -> None:
    queue, _ = queued(BatchPolicy(max_queue=2), [0.2, 0.1])
    extra, _ = queued(BatchPolicy(), [0.0])
    with pytest.raises(Busy) as info:
        queue.admit(extra.take()[0], 0.25)
    assert info.value.status == 429 and info.value.retry_after == 0.25 and "queue is full (2)" in info.value.message
    assert len(queue) == 2


def test_jobs_whose_caller_stopped_waiting_are_skipped() -> None:
    queue, items = queued(BatchPolicy(batch_size=2), [0.4, 0.3, 0.2, 0.1])
    items[0].future.cancel()  # the caller's deadline passed or it disconnected
    items[2].future.cancel()
    assert [p.job.id for p in queue.take()] == [2, 4]
    assert len(queue) == 0


def test_without_a_timeout_a_batch_leaves_at_once() -> None:
    queue, _ = queued(BatchPolicy(batch_size=8, batch_timeout_s=0.0), [0.0])
    assert queue.hold_s(100.0, worker_idle=True) == 0.0


def test_an_idle_worker_holds_a_short_batch_until_the_oldest_job_is_timeout_old() -> None:
    queue, _ = queued(BatchPolicy(batch_size=4, batch_timeout_s=0.010), [0.004, 0.001])
    assert queue.hold_s(100.0, worker_idle=True) == pytest.approx(0.006)
    assert queue.hold_s(100.006, worker_idle=True) == pytest.approx(0.0, abs=1e-9)
    assert queue.hold_s(100.5, worker_idle=True) == 0.0  # long past the timeout: never negative


def test_a_full_batch_or_a_busy_worker_does_not_wait() -> None:
    full, _ = queued(BatchPolicy(batch_size=2, batch_timeout_s=1.0), [0.0, 0.0])
    assert full.hold_s(100.0, worker_idle=True) == 0.0
    short, _ = queued(BatchPolicy(batch_size=2, batch_timeout_s=1.0), [0.0])
    assert short.hold_s(100.0, worker_idle=False) == 0.0
    assert short.hold_s(100.0, worker_idle=True) == pytest.approx(1.0)


def test_no_worker_holds_a_batch_while_another_is_idle() -> None:
    short, _ = queued(BatchPolicy(batch_size=4, batch_timeout_s=1.0), [0.0])
    assert short.hold_s(100.0, worker_idle=True, others_idle=True) == 0.0
    assert short.hold_s(100.0, worker_idle=True, others_idle=False) == pytest.approx(1.0)


def test_idle_workers_share_the_queue_evenly_up_to_batch_size() -> None:
    queue, _ = queued(BatchPolicy(batch_size=8), [0.0] * 10)
    assert [queue.share(n) for n in (1, 2, 3, 4, 16)] == [8, 5, 4, 3, 1]
    # as the pool dispatches: each batch sent leaves one idle worker fewer
    assert [len(queue.take(queue.share(idle))) for idle in (4, 3, 2, 1)] == [3, 3, 2, 2]
    big, _ = queued(BatchPolicy(batch_size=4), [0.0] * 20)
    assert big.share(2) == 4 and len(big.take(99)) == 4  # never past batch_size


def test_drain_empties_the_queue_in_order() -> None:
    queue, items = queued(BatchPolicy(), [0.3, 0.2, 0.1])
    assert queue.drain() == items
    assert len(queue) == 0 and queue.hold_s(100.0, worker_idle=True) == 0.0


def test_waiting_counts_only_jobs_whose_caller_still_waits() -> None:
    queue, items = queued(BatchPolicy(), [0.3, 0.2, 0.1])
    assert queue.waiting() == 3
    items[1].future.cancel()
    assert queue.waiting() == 2 and len(queue) == 3

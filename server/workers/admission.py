"""Admission under overload, apart from the processes: how much worker time each job takes, and whether a new
request can still be answered within its deadline given the work already ahead of it.

A request that would only time out in the queue is refused at once with 429 and a retry hint, instead of taking
a place in the queue, using worker time, and answering 504 anyway: under overload the workers then spend their
time on requests that still succeed (goodput), and refused clients come back when there is room.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import Busy, DeadlineExceeded

SMOOTHING = 0.2  # weight of the newest batch in the mean service time
HEADROOM = 0.8  # admit when the estimate fits this share of the deadline: it is a mean, the deadline a hard cut
MIN_HINT_S = 0.005
UNMEASURED_HINT_S = 0.1  # the retry hint before any batch was timed


@dataclass
class ServiceTime:
    """Worker seconds per job: an exponentially weighted mean over recent batches (None before the first)."""

    per_job: float | None = None

    def observe(self, seconds: float, jobs: int) -> None:
        """A worker spent `seconds` on a batch of `jobs`."""
        if jobs <= 0 or seconds <= 0:
            return
        sample = seconds / jobs
        self.per_job = sample if self.per_job is None else self.per_job + SMOOTHING * (sample - self.per_job)

    def backlog_s(self, jobs: int, workers: int) -> float:
        """About how long `workers` take to finish `jobs` (0 before any batch was measured)."""
        return jobs * (self.per_job or 0.0) / max(workers, 1)

    def retry_hint(self, jobs: int, workers: int) -> float:
        """Seconds a refused client should wait: about how long the `jobs` ahead take to finish."""
        if self.per_job is None:
            return UNMEASURED_HINT_S
        return max(MIN_HINT_S, self.backlog_s(jobs, workers))


def admit(model: str, service: ServiceTime, ahead: int, workers: int, batch_size: int, budget_s: float) -> None:
    """Busy (429) when the `ahead` jobs already queued or running would keep a new request past its deadline,
    `budget_s` from now. Its answer comes when its whole batch is done, so the batch it would join (up to
    batch_size jobs, as many as are waiting) counts too. The retry hint is how long until that fits a fresh
    deadline of the same length. A request with nothing ahead is always admitted; one whose deadline is shorter
    than one job alone takes could not succeed on an idle server either, so it is a 504 at once, not a 429 whose
    retry would fail the same way."""
    if ahead == 0 or service.per_job is None:
        return
    if service.per_job > budget_s:
        raise DeadlineExceeded(f"the request's deadline ({budget_s * 1000:.1f} ms) is shorter than one image takes "
                               f"(about {service.per_job * 1000:.0f} ms), with work ahead of it")  # fmt: skip
    wait = service.backlog_s(ahead, workers)
    done = service.backlog_s(ahead + min(batch_size, ahead + 1), workers)
    if done <= HEADROOM * budget_s:
        return
    hint = max(MIN_HINT_S, done - HEADROOM * budget_s)
    raise Busy(f"model {model!r} is overloaded: about {wait * 1000:.0f} ms of work is ahead of this request, "
               f"more than its deadline allows ({budget_s * 1000:.0f} ms)", retry_after=hint)  # fmt: skip

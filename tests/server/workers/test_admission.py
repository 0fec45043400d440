"""Admission decisions of server.workers.admission, without processes: the service-time estimate and when a
request is refused because the work ahead of it would outlast its deadline."""

from __future__ import annotations

import pytest

from server.errors import Busy, DeadlineExceeded
from server.workers.admission import HEADROOM, UNMEASURED_HINT_S, ServiceTime, admit


def test_service_time_is_a_weighted_mean_per_job() -> None:
    service = ServiceTime()
    assert service.per_job is None and service.backlog_s(10, 2) == 0.0
    service.observe(0.080, 8)  # first batch: 10 ms per job
    assert service.per_job == pytest.approx(0.010)
    service.observe(0.040, 2)  # 20 ms per job moves the mean a fifth of the way
    assert service.per_job == pytest.approx(0.012)
    service.observe(0.0, 4)  # a batch that took no time (all skipped) teaches nothing
    service.observe(0.5, 0)
    assert service.per_job == pytest.approx(0.012)
    assert service.backlog_s(10, 2) == pytest.approx(0.060)


def test_retry_hint_is_the_time_to_work_off_what_is_ahead() -> None:
    service = ServiceTime()
    assert service.retry_hint(8, 1) == UNMEASURED_HINT_S
    service.observe(0.020, 1)
    assert service.retry_hint(8, 2) == pytest.approx(0.080)
    assert service.retry_hint(0, 2) > 0  # never "retry now": an instant retry would meet the same queue


def test_nothing_ahead_or_nothing_measured_is_admitted() -> None:
    service = ServiceTime()
    admit("m", service, ahead=100, workers=1, batch_size=8, budget_s=0.001)  # no estimate yet
    service.observe(1.0, 1)
    admit("m", service, ahead=0, workers=1, batch_size=8, budget_s=0.001)  # too short even alone: a 504 later


def test_work_ahead_beyond_the_deadline_is_refused_with_a_hint() -> None:
    service = ServiceTime()
    service.observe(0.010, 1)  # 10 ms per job, one worker
    # 10 ahead + a batch of up to 8: done after ~180 ms, within 80% of 250 ms
    admit("m", service, ahead=10, workers=1, batch_size=8, budget_s=0.250)
    with pytest.raises(Busy) as info:  # 20 ahead + 8: ~280 ms, past 80% of 250 ms
        admit("m", service, ahead=20, workers=1, batch_size=8, budget_s=0.250)
    error = info.value
    assert error.status == 429 and error.code == "busy"
    assert "model 'm' is overloaded: about 200 ms of work is ahead" in error.message
    assert "(250 ms)" in error.message
    assert error.retry_after == pytest.approx(0.280 - HEADROOM * 0.250)
    admit("m", service, ahead=20, workers=2, batch_size=8, budget_s=0.250)  # two workers halve the wait


def test_a_deadline_shorter_than_one_job_is_a_504_not_a_429() -> None:
    service = ServiceTime()
    service.observe(0.006, 1)  # 6 ms per job
    with pytest.raises(DeadlineExceeded) as info:  # a retry with the same deadline could never succeed
        admit("m", service, ahead=1, workers=1, batch_size=8, budget_s=0.0001)
    assert info.value.status == 504 and "shorter than one image takes (about 6 ms)" in info.value.message
    with pytest.raises(Busy):  # long enough for one job, not for the queue: overload
        admit("m", service, ahead=50, workers=1, batch_size=8, budget_s=0.010)

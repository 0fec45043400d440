"""Prometheus metrics of one server (own registry, so several servers can live in one process)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from server.jobs import Job, Result

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0)


# Triton's statistics names -> our stages
_STAGES = {"queue": "queue", "compute_input": "preprocess", "compute_infer": "inference",
           "compute_output": "postprocess"}  # fmt: skip


class Count:
    """A gauge as infer() uses it: inc() / dec()."""

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


_REMOTE_CALLS = frozenset({"answered", "stages", "batch", "rate_limited"})


@dataclass
class _Totals:
    """What Triton's statistics count per model and Prometheus's labels do not keep together."""

    success: list[int] = field(default_factory=lambda: [0, 0])  # [count, ns]
    fail: list[int] = field(default_factory=lambda: [0, 0])
    last_ms: int = 0
    executions: int = 0


class Metrics:
    """Requests by model/protocol/status, latency split by stage, queue depth, batch sizes, restarts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("segserving_requests", "Requests answered", ["model", "protocol", "status"], registry=r)
        self.latency = Histogram("segserving_request_duration_seconds", "End-to-end latency inside the server",
                                 ["model", "protocol"], buckets=_LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.stage_durations = Histogram("segserving_stage_duration_seconds",
                                         "Time per stage: queue (incl. transfer to the worker), preprocess, "
                                         "inference, postprocess", ["model", "stage"], buckets=_STAGE_BUCKETS,
                                         registry=r)  # fmt: skip
        self.batch_sizes = Histogram("segserving_batch_size", "Jobs per batch sent to a worker", ["model"],
                                     buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64), registry=r)  # fmt: skip
        self.restarts = Counter("segserving_worker_restarts", "Inference workers restarted", ["model"], registry=r)
        self.queue_depth = Gauge("segserving_queue_depth", "Jobs waiting for a worker", ["model"], registry=r)
        self.inflight = Count()  # requests the front holds; workers that serve HTTP report theirs
        self._remote_inflight: dict[str, int] = {}
        Gauge("segserving_inflight_requests", "Requests being handled", registry=r).set_function(
            lambda: self.inflight.value + sum(self._remote_inflight.values())
        )
        self.memory = Gauge("segserving_memory_rss_bytes", "Resident memory per process: the front, and each "
                            "model's workers as MODEL/INDEX", ["process"], registry=r)  # fmt: skip
        self.connections = Gauge("segserving_connections", "Open client connections", registry=r)
        self.connections_closed = Counter("segserving_connections_closed", "Connections closed at --max_connections: "
                                          "shed (idle, to make room) or refused (no idle one)", ["reason"],
                                          registry=r)  # fmt: skip
        self._totals: dict[str, _Totals] = {}
        self.limited = Counter("segserving_rate_limited", "Requests refused by --rate_limit", ["transport"],
                               registry=r)  # fmt: skip

    @staticmethod
    @functools.cache
    def _child(metric: Any, *labels: str) -> Any:
        """metric.labels(*labels), looked up once: prometheus_client's labels() takes a lock and builds a key."""
        return metric.labels(*labels)

    def track_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model).set_function(depth)

    def answered(self, model: str, protocol: str, status: int, seconds: float) -> None:
        self._child(self.requests, model, protocol, str(status)).inc()
        self._child(self.latency, model, protocol).observe(seconds)
        totals = self._totals.setdefault(model, _Totals())
        kept = totals.success if status == 200 else totals.fail
        kept[0] += 1
        kept[1] += int(seconds * 1e9)
        totals.last_ms = time.time_ns() // 1_000_000

    def statistics(self, model: str) -> dict[str, Any]:
        """Triton's per-model statistics (`/v2/models/{m}/stats`, ModelStatistics): requests that succeeded and
        failed with their total time, time per stage, batches run, and the last request's time (ms)."""
        totals = self._totals.get(model, _Totals())
        stats = {"success": _duration(*totals.success), "fail": _duration(*totals.fail)}
        for name, stage in _STAGES.items():
            count = self.registry.get_sample_value("segserving_stage_duration_seconds_count",
                                                   {"model": model, "stage": stage})  # fmt: skip
            total = self.registry.get_sample_value("segserving_stage_duration_seconds_sum",
                                                   {"model": model, "stage": stage})  # fmt: skip
            stats[name] = _duration(int(count or 0), int((total or 0.0) * 1e9))
        return {"name": model, "version": "1", "last_inference": totals.last_ms,
                "inference_count": totals.success[0], "execution_count": totals.executions,
                "inference_stats": stats}  # fmt: skip

    def track_memory(self, process: str, rss: Callable[[], float]) -> None:
        self.memory.labels(process).set_function(rss)

    def track_connections(self, count: Callable[[], int]) -> None:
        self.connections.set_function(count)

    def connection_closed(self, reason: str) -> None:
        self._child(self.connections_closed, reason).inc()

    def rate_limited(self, transport: str) -> None:
        self._child(self.limited, transport).inc()

    def stages(self, model: str, durations: dict[str, float]) -> None:
        for stage, seconds in durations.items():
            self._child(self.stage_durations, model, stage).observe(seconds)

    # PoolObserver
    def result(self, model: str, job: Job, result: Result) -> None:
        worker_time = sum(result.timings.values())
        self.stages(model, {"queue": max(time.monotonic() - job.enqueued - worker_time, 0.0), **result.timings})

    def record(self, source: str, calls: list[tuple[str, tuple[Any, ...]]], inflight: int) -> None:
        """What a worker that serves HTTP itself counted (server.workers.telemetry.Recorder)."""
        for name, args in calls:
            if name in _REMOTE_CALLS:
                getattr(self, name)(*args)
        self._remote_inflight[source] = inflight

    def batch(self, model: str, size: int) -> None:
        self._child(self.batch_sizes, model).observe(size)
        self._totals.setdefault(model, _Totals()).executions += 1

    def restart(self, model: str) -> None:
        self.restarts.labels(model).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}

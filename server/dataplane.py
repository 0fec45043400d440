"""The DataPlane: what every transport calls. It knows models, workers, deadlines and metrics, not HTTP or gRPC."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from segcore.engines import choose_engine
from segcore.repository import ModelSpec
from server.errors import InvalidInput, NotFound, ServingError, Unavailable
from server.jobs import PLAIN, Job, JobKind, Result, Transport
from server.memory import rss_bytes
from server.metrics import Metrics
from server.settings import ModelSettings, ServerSettings
from server.workers.pool import ModelWorkers, worker_specs

log = logging.getLogger("server.dataplane")


@dataclass(frozen=True)
class ModelInfo:
    """One served model as the transports describe it: its files and config, engine and workers."""

    spec: ModelSpec
    engine: str
    ready: bool
    workers: list[dict[str, Any]]
    settings: ModelSettings


UNKNOWN_MODEL_LABEL = "(unknown)"
CLIENT_GONE = 499  # the status /metrics counts for a client that left before its request was read (nginx's 499)
Body = bytes | Callable[[], Awaitable[bytes]]


class Submitter(Protocol):
    """Where a model's jobs run: its worker pool in the front, or inside a worker that serves HTTP itself, the
    worker's own queue (and the front, for the other models)."""

    @property
    def ready(self) -> bool: ...
    def admission(self, budget_s: float) -> None: ...
    async def submit(self, job: Job) -> Result: ...


class RequestCounters(Protocol):
    """What infer() counts: requests in hand, and each one answered."""

    @property
    def inflight(self) -> Any: ...  # a gauge: inc() / dec()
    def answered(self, model: str, protocol: str, status: int, seconds: float) -> None: ...


class DataPlane:
    """Models by name, each behind its pool of inference workers (`pools`, when given, instead: the job queues of
    a worker that serves HTTP itself, and `counters` the metrics it reports to the front)."""

    def __init__(self, settings: ServerSettings, metrics: Metrics | None = None,
                 pools: Mapping[str, Submitter] | None = None,
                 counters: RequestCounters | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.counters: RequestCounters = counters or self.metrics
        self.specs: dict[str, ModelSpec] = {m.spec.name: m.spec for m in settings.models}
        self.choices = {m.spec.name: choose_engine(m.spec.config, m.engine) for m in settings.models}
        self.engines = {name: choice.name for name, choice in self.choices.items()}
        self.workers: dict[str, ModelWorkers] = {}
        if pools is None:
            # with --direct_http the first model's workers serve HTTP connections too
            direct = {settings.models[0].spec.name} if settings.direct_http else set()
            self.workers = {
                m.spec.name: ModelWorkers(m.spec.name, worker_specs(m, settings.limits, settings.max_body_size,
                                                                    settings if m.spec.name in direct else None),
                                          m.batch, self.metrics)
                for m in settings.models
            }  # fmt: skip
            self._track()
        self.pools: Mapping[str, Submitter] = self.workers if pools is None else pools
        self.default_model = settings.models[0].spec.name
        self.draining = False

    def _track(self) -> None:
        self.metrics.track_memory("front", lambda: float(rss_bytes(os.getpid()) or 0))
        for name, pool in self.workers.items():
            self.metrics.track_queue(name, functools.partial(getattr, pool, "queue_depth"))
            for index in range(pool.size):
                self.metrics.track_memory(f"{name}/{index}", functools.partial(pool.worker_rss, index))

    async def start(self) -> None:
        """Start every model's workers; returns once all are loaded and warmed up."""
        for name, pool in self.workers.items():
            await pool.start()
            choice = self.choices[name]
            log.info("model %s ready on %s (%s): %s", name, choice.name, choice.reason, pool.describe())

    async def stop(self) -> None:
        """Drain: refuse new work, finish what is queued or running (bounded), stop the workers."""
        self.draining = True
        await asyncio.gather(*(pool.stop(self.settings.drain_timeout_s) for pool in self.workers.values()))

    def hand_off(self, fd: int, on_closed: Callable[[], None]) -> bool:
        """With --direct_http: give client connection `fd` to one of the first model's workers (False: none ready,
        the front serves it). `on_closed` is called once the connection closes."""
        pool = self.workers.get(self.default_model)
        return pool is not None and pool.ready and not self.draining and pool.hand_off(fd, on_closed)

    async def collect(self) -> None:
        """Bring in what workers that serve HTTP themselves counted (before /metrics or statistics are read)."""
        await asyncio.gather(*(pool.collect() for pool in self.workers.values()))

    @property
    def live(self) -> bool:
        return True

    @property
    def ready(self) -> bool:
        return not self.draining and all(pool.ready for pool in self.pools.values())

    def spec(self, name: str | None) -> ModelSpec:
        """The named model (default: the first served); 404 listing the served names otherwise."""
        name = name or self.default_model
        if name not in self.specs:
            raise NotFound(f"model {name!r} is not served here; models: {', '.join(self.specs)}")
        return self.specs[name]

    async def infer(self, model: str | None, kind: JobKind, body: Body, params: dict[str, str], protocol: str,
                    timeout_s: float | None = None, transport: Transport = PLAIN) -> Result:  # fmt: skip
        """Run one request on a worker within min(timeout_s, --request_timeout_ms). ServingError for anything
        refused before or while running. `body` may be a coroutine function reading it: it is called only once
        the request is admitted, so an overloaded server refuses (429) without reading what it would not run. A
        reader raising ConnectionError (the client left) is counted as 499."""
        started = time.monotonic()
        name = model or self.default_model
        self.counters.inflight.inc()
        status = 500
        try:
            spec = self.spec(name)
            if self.draining:
                raise Unavailable("server is shutting down")
            timeout = (
                self.settings.request_timeout_s
                if timeout_s is None
                else min(timeout_s, self.settings.request_timeout_s)
            )
            pool = self.pools[spec.name]
            if not isinstance(body, bytes):
                pool.admission(timeout)
                body = await body()
            if not body:
                raise InvalidInput("request body is empty")
            job = Job(0, kind, body, params, transport, deadline=started + timeout, request_id=secrets.token_hex(8))
            result = await pool.submit(job)
            status = result.status
            return result
        except ServingError as exc:
            status = exc.status
            raise
        except ConnectionError:
            status = CLIENT_GONE
            raise
        finally:
            self.counters.inflight.dec()
            # unknown names fold into one label: invented names must not grow /metrics without bound
            label = name if name in self.specs else UNKNOWN_MODEL_LABEL
            self.counters.answered(label, protocol, status, time.monotonic() - started)

    def model_ready(self, name: str) -> bool:
        """Whether the named model takes requests now (NotFound if it is not served)."""
        return self.pools[self.spec(name).name].ready and not self.draining

    def readiness(self) -> dict[str, bool]:
        """Each served model's workers ready or not (draining aside)."""
        return {name: pool.ready for name, pool in self.pools.items()}

    def info(self, name: str) -> ModelInfo:
        """What a transport may say about a model (NotFound if it is not served)."""
        spec = self.spec(name)
        pool = self.workers[spec.name]
        settings = next(m for m in self.settings.models if m.spec.name == spec.name)
        return ModelInfo(spec, self.engines[spec.name], pool.ready, pool.describe(), settings)

"""What the server runs: models, their workers and batching, limits. Built by server.start from flags."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from segcore.defaults import DEFAULT_PORT
from segcore.engines import EngineOptions
from segcore.images import ImageLimits
from segcore.repository import ModelSpec
from server.workers.pool import BatchPolicy
from server.workers.process import WorkerSpec


@dataclass(frozen=True)
class ModelSettings:
    """One served model: where it is, which engine, how many workers on which devices, batching."""

    spec: ModelSpec
    engine: str = "auto"
    workers: int = 1
    gpu_ids: tuple[int, ...] = ()
    options: EngineOptions = field(default_factory=EngineOptions)
    batch: BatchPolicy = field(default_factory=BatchPolicy)

    def worker_specs(self, limits: ImageLimits, max_body_size: int) -> list[WorkerSpec]:
        """Worker i runs on gpu_ids[i % len] (Paddle Serving's round-robin), or on the CPU without ids."""
        specs = []
        for i in range(self.workers):
            options = self.options
            if self.gpu_ids:
                options = replace(options, device="gpu", gpu_id=self.gpu_ids[i % len(self.gpu_ids)])
            specs.append(
                WorkerSpec(str(self.spec.server_dir), self.spec.name, self.engine, options, limits, i, max_body_size)
            )
        return specs


@dataclass(frozen=True)
class ServerSettings:
    """The whole server."""

    models: tuple[ModelSettings, ...]
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    max_body_size: int = 512 * 2**20
    request_timeout_s: float = 30.0
    drain_timeout_s: float = 20.0
    limits: ImageLimits = field(default_factory=ImageLimits)
    workdir: str = "workdir"

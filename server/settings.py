"""What the server runs: models, their workers and batching, limits. Built by server.cli from flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from segcore.defaults import DEFAULT_PORT
from segcore.engines import EngineOptions
from segcore.images import ImageLimits
from segcore.repository import ModelSpec
from server.auth import ApiKeys


@dataclass(frozen=True)
class BatchPolicy:
    """Dynamic batching and admission limits of one model."""

    batch_size: int = 8
    batch_timeout_s: float = 0.0
    max_queue: int = 256


@dataclass(frozen=True)
class ModelSettings:
    """One served model: where it is, which engine, how many workers on which devices, batching."""

    spec: ModelSpec
    engine: str = "auto"
    workers: int = 1
    gpu_ids: tuple[int, ...] = ()
    options: EngineOptions = field(default_factory=EngineOptions)
    batch: BatchPolicy = field(default_factory=BatchPolicy)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for HTTPS and gRPC over TLS on the one port; ca_certs makes client certificates required."""

    certfile: str
    keyfile: str | None = None
    ca_certs: str | None = None


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
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 20.0
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    cors_origins: tuple[str, ...] = ()
    tls: TlsFiles | None = None
    metrics_auth: bool = False
    rate_limit: float = 0.0  # inference requests per second per API key; 0: no limit
    max_connections: int = 1000  # open client connections; 0: no cap
    prometheus_port: int | None = None  # also serve /metrics there (--enable_prometheus)
    direct_http: bool = False  # workers serve HTTP/1.1 connections of the first model themselves

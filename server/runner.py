"""Runs a configured server: workers, the HTTP app and the gRPC service on one port, graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import resource
import signal
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from server.acceptor import Acceptor
from server.control import remove_pid, runtime_dir, write_pid
from server.dataplane import DataPlane
from server.grpc.service import build_server
from server.listener import ConnectionTable, HeadLimits, sniffing_protocol
from server.ratelimit import RateLimiter
from server.relay import Relay
from server.rest.app import create_app
from server.rest.auth import AuthGate
from server.rest.cors import with_cors
from server.rest.inference import InferenceRoutes
from server.settings import ServerSettings, TlsFiles

log = logging.getLogger("server")
_ANSWER_MARGIN_S = 1.0  # after the drain, time for requests it cut off to get their 503 written


class _DrainingServer(uvicorn.Server):
    """uvicorn that drains the DataPlane from the moment it starts shutting down: in-flight requests finish within
    --drain_timeout_ms and the rest get 503, while uvicorn still waits for their connections (uvicorn alone would
    cancel them with a bare 500 at its own timeout, and the lifespan shutdown only runs after that)."""

    def __init__(self, plane: DataPlane, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.plane = plane
        self.acceptor: Acceptor | None = None  # with --direct_http the front accepts, not uvicorn

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
        draining = asyncio.get_running_loop().create_task(self.plane.stop())
        try:
            await super().shutdown(sockets)
        finally:
            await draining


class Runner:
    """Owns the DataPlane, the ASGI app and the gRPC server for one process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.plane = DataPlane(settings)
        self.limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None  # shared by HTTP and gRPC
        # a gRPC connection silent for longer than a request may run has no call in progress
        self.connections = ConnectionTable(settings.max_connections or None, settings.request_timeout_s + 1.0,
                                           self.plane.metrics.connection_closed)  # fmt: skip
        self.plane.metrics.track_connections(self.connections.__len__)
        _room_for_connections(settings.max_connections)
        self.exit_code = 0
        self.runtime = runtime_dir(settings.workdir, settings.port)
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.grpc_socket = self.runtime / "grpc.sock"
        self.app: FastAPI = create_app(self.plane)
        self.app.router.lifespan_context = self._lifespan
        routes = InferenceRoutes(self.plane, self.app)  # behind CORS and the key check
        relay = Relay(self.plane, routes)  # what workers serving HTTP ask for, past their own key check
        for pool in self.plane.workers.values():
            pool.on_call = relay
        self.server = _DrainingServer(
            self.plane,
            uvicorn.Config(
                with_cors(
                    AuthGate(
                        routes,
                        settings.api_keys,
                        settings.metrics_auth,
                        self.limiter,
                        self.plane.metrics,
                    ),
                    settings.cors_origins,
                ),
                host=settings.host,
                port=settings.port,
                http=sniffing_protocol(
                    str(self.grpc_socket),
                    HeadLimits(settings.max_header_bytes, settings.header_timeout_s),
                    self.connections,
                ),
                loop="uvloop",  # faster I/O callbacks; grpc.aio runs on it too
                lifespan="on",
                access_log=False,
                proxy_headers=False,  # no X-Forwarded-* rewriting on the hot path; put a proxy's own logs first
                # the DataPlane's drain bounds in-flight work; this only backstops connections that stay open
                timeout_graceful_shutdown=settings.drain_timeout_s + _ANSWER_MARGIN_S,  # type: ignore[arg-type]
                log_config=None,
            ),
        )
        if settings.tls is not None:
            self.server.config.load()
            self.server.config.ssl = tls_context(settings.tls)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.grpc_socket.unlink(missing_ok=True)
        grpc_server = build_server(self.plane, f"unix:{self.grpc_socket}", self.limiter)
        await grpc_server.start()
        if self.server.acceptor is not None:
            self.server.acceptor.start()
        loading = asyncio.get_running_loop().create_task(self._load())
        try:
            yield
        finally:
            loading.cancel()
            self.plane.draining = True
            await grpc_server.stop(self.settings.drain_timeout_s)
            await self.plane.stop()
            self.grpc_socket.unlink(missing_ok=True)
            log.info("server stopped")

    async def _load(self) -> None:
        """Load and warm every model while the port already answers /health (503 until ready)."""
        try:
            await self.plane.start()
        except Exception as exc:  # a model that cannot load stops the server with exit code 1
            log.error("%s", exc)
            self.exit_code = 1
            self.server.should_exit = True
            return
        names = ", ".join(f"{n} ({self.plane.engines[n]})" for n in self.plane.specs)
        log.info("ready: serving %s on %s:%d (HTTP/1.1 + gRPC)", names, self.settings.host, self.settings.port)

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM; then drain and return the exit code (0 after a drained shutdown)."""
        if not self.settings.api_keys.enabled and not _loopback(self.settings.host):
            log.warning("no API keys: anyone who can reach %s:%d can use every model (set --api_key_file or "
                        "SEGSERVING_API_KEYS)", self.settings.host, self.settings.port)  # fmt: skip
        metrics_server = None
        if self.settings.prometheus_port is not None:
            try:
                tls = self.settings.tls  # the metrics port speaks TLS too when the main one does
                metrics_server, _ = start_http_server(self.settings.prometheus_port, self.settings.host,
                                                      self.plane.metrics.registry, tls.certfile if tls else None,
                                                      tls.keyfile if tls else None)  # fmt: skip
            except OSError as exc:
                log.error("cannot serve /metrics on --prometheus_port %d: %s", self.settings.prometheus_port, exc)
                return 1
            log.info("metrics on http://%s:%d/metrics", self.settings.host, self.settings.prometheus_port)
        write_pid(self.runtime)  # for `python -m server.start stop|kill --port N`
        try:
            return self._serve()
        finally:
            remove_pid(self.runtime)
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()

    def _serve(self) -> int:
        # with --direct_http the front accepts on the port itself (server.acceptor), uvicorn on none
        sockets: list[socket.socket] | None = None
        if self.settings.direct_http:
            self._listen_direct()
            sockets = []
        if threading.current_thread() is not threading.main_thread():
            self.server.run(sockets)
            return self.exit_code
        # Once drained, uvicorn re-raises the signal that stopped it under the handlers set before it started;
        # with the default ones a clean SIGTERM shutdown would end as "killed by SIGTERM" (exit code -15).
        previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.server.run(sockets)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _listen_direct(self) -> None:
        """Bind the port (exit 3 as uvicorn does if it cannot) and set up the acceptor on it."""
        config = self.server.config
        listener = config.bind_socket()
        listener.listen(config.backlog)
        if not config.loaded:
            config.load()

        def serve_here(conn: socket.socket) -> None:
            server = self.server
            protocol: Any = config.http_protocol_class  # uvicorn's protocols take these keyword arguments
            factory = functools.partial(protocol, config=config, server_state=server.server_state,
                                        app_state=server.lifespan.state)  # fmt: skip
            asyncio.get_running_loop().create_task(_connect(factory, conn))

        self.server.acceptor = Acceptor(listener, self.connections, self.plane.hand_off, serve_here,
                                        self.settings.header_timeout_s)  # fmt: skip


async def _connect(protocol: Callable[[], asyncio.BaseProtocol], conn: socket.socket) -> None:
    """Serve an accepted connection in the front (the client may be gone by now)."""
    try:
        await asyncio.get_running_loop().connect_accepted_socket(protocol, conn)
    except OSError:
        conn.close()


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """The listener's TLS context. ALPN prefers http/1.1, so browsers and curl (which offer h2 too) speak
    HTTP/1.1, while gRPC clients (which offer only h2) get h2, which the listener splices to the gRPC server."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certfile, files.keyfile)
    if files.ca_certs:
        context.load_verify_locations(files.ca_certs)
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1", "h2"])
    return context


_SPARE_FDS = 256  # beside the connections: workers' sockets, model files, the gRPC socket, logs


def _room_for_connections(cap: int) -> None:
    """Raise the open-file limit (soft, up to the hard one) so `cap` connections fit; warn when they cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = cap + _SPARE_FDS
    if not cap or soft == resource.RLIM_INFINITY or soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(hard, need)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < need:
        log.warning("--max_connections %d needs about %d open files, but this process may open %d (ulimit -n): "
                    "connections past that cannot be accepted", cap, need, soft)  # fmt: skip


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _drained(signum: int, frame: object) -> None:
    """Handler for the signal uvicorn re-raises after a graceful shutdown: the drain is done, nothing to do."""

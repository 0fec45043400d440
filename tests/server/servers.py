"""Real server processes on 127.0.0.1 with free ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from helpers import TOOLS_PYTHON, child_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running `python -m server.start`; url is http://127.0.0.1:PORT."""

    process: subprocess.Popen[str]
    port: int
    log_path: Path
    tls_ca: Path | None = None  # a TLS server: https, trusting this CA
    tls_client: Path | None = None  # the client certificate (+ key) it requires, if any

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> list[int]:
        """Poll /health/ready until 200; returns every status seen (503s while models load)."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                verify = ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else True
                if self.tls_client and not isinstance(verify, bool):
                    verify.load_cert_chain(str(self.tls_client))
                status = httpx.get(f"{self.url}/health/ready", timeout=2, verify=verify).status_code
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            seen.append(status)
            if status == 200:
                return seen
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def start_server(tmp_path: Path, *args: str | Path, wait: bool = True, env: dict[str, str] | None = None,
                 tls_ca: Path | None = None, tls_client: Path | None = None) -> Iterator[ServerProcess]:  # fmt: skip
    """Start a server with the given flags (port and workdir added) and extra environment; stopped on exit."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [TOOLS_PYTHON, "-m", "server.start", "--port", str(port), "--host", "127.0.0.1",
             "--workdir", str(tmp_path / "workdir"), *map(str, args)],
            stdout=log, stderr=subprocess.STDOUT, env=child_env(**(env or {})), text=True,
        )  # fmt: skip
    server = ServerProcess(process, port, log_path, tls_ca, tls_client)
    try:
        if wait:
            server.wait_ready()
        yield server
    finally:
        server.stop()

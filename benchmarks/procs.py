"""Starting the systems under test as processes, waiting for them, and sampling their CPU and memory."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), environment.get("PYTHONPATH")) if p)
    return environment


@contextlib.contextmanager
def serve(command: list[str], health_url: str, log: Path, timeout: float = 180.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until its health URL answers 200; SIGTERM (then SIGKILL) on exit."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env(), cwd=ROOT,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[2:4]} exited with {process.returncode}; see {log}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[2:4]} not healthy after {timeout}s; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Usage:
    """CPU (percent of one core, summed over the process tree) and RSS (MiB) sampled during a run."""

    cpu_percent: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    @property
    def mean_cpu(self) -> float:
        return sum(self.cpu_percent) / len(self.cpu_percent) if self.cpu_percent else 0.0

    @property
    def max_rss(self) -> float:
        return max(self.rss_mib, default=0.0)


@contextlib.contextmanager
def sample(pid: int, interval: float = 0.5) -> Iterator[Usage]:
    """Sample the tree rooted at `pid` every `interval` seconds while the block runs."""
    usage, stop = Usage(), threading.Event()
    root = psutil.Process(pid)

    def tree() -> list[psutil.Process]:
        return [root, *root.children(recursive=True)]

    def loop() -> None:
        known: dict[int, psutil.Process] = {}
        while not stop.wait(interval):
            try:
                procs = tree()
                cpu = 0.0
                for p in procs:
                    if p.pid not in known:
                        known[p.pid] = p
                        p.cpu_percent(None)
                    cpu += known[p.pid].cpu_percent(None)
                usage.cpu_percent.append(cpu)
                usage.rss_mib.append(sum(p.memory_info().rss for p in procs) / 2**20)
            except psutil.Error:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield usage
    finally:
        stop.set()
        thread.join()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}  # fmt: skip

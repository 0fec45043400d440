"""Paddle Serving's other `serve` commands: `stop` / `kill` a running server, found by the pid file it keeps in
WORKDIR_PORT/, and `check`, which reports what this environment can run."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import signal
import sys
import time
from pathlib import Path

PID_FILE = "server.pid"
STOP_WAIT_S = 60.0  # a stopped server drains in-flight requests first (--drain_timeout_ms, 20 s by default)


def runtime_dir(workdir: str, port: int) -> Path:
    """Where a server on `port` keeps its runtime files (Paddle Serving's WORKDIR_PORT convention)."""
    return Path(f"{workdir}_{port}").absolute()


def write_pid(runtime: Path) -> None:
    """Record this process in `runtime`/server.pid (written whole, then renamed into place)."""
    staging = runtime / f".{PID_FILE}.{os.getpid()}"
    staging.write_text(f"{os.getpid()}\n")
    staging.replace(runtime / PID_FILE)


def remove_pid(runtime: Path) -> None:
    path = runtime / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text()) == os.getpid():
            path.unlink()


def _is_server(pid: int) -> bool:
    """Whether `pid` is alive and is a SegServing server (not a process that took over a stale pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"server.start" in command or b"segserving" in command


def stop(workdir: str, port: int | None, kill: bool) -> int:
    """SIGTERM (drain, then exit) or SIGKILL the server on `port`, or every server under `workdir` without one;
    a stop waits until the server has exited. 0 when every one found stopped, else 1."""
    base = Path(workdir).absolute()
    files = ([runtime_dir(workdir, port) / PID_FILE] if port is not None
             else sorted(base.parent.glob(f"{base.name}_*/{PID_FILE}")))  # fmt: skip
    files = [f for f in files if f.is_file()]
    if not files:
        where = runtime_dir(workdir, port) if port is not None else f"{base}_*"
        print(f"error: no running server found: no {PID_FILE} in {where}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            pid = int(path.read_text())
        except ValueError:
            pid = 0
        if not _is_server(pid):
            print(f"{path}: pid {pid} is not running; removed the stale file")
            path.unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + (5.0 if kill else STOP_WAIT_S)
        while _is_server(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_server(pid):
            print(f"error: server pid {pid} ({path.parent.name}) is still running", file=sys.stderr)
            failed += 1
            continue
        path.unlink(missing_ok=True)
        print(f"{'killed' if kill else 'stopped'} server pid {pid} ({path.parent.name})")
    return 1 if failed else 0


def check() -> int:
    """Print the Python, the engines and the devices this environment offers; 0 if a model can be served."""
    from server.cpus import available

    print(f"python {platform.python_version()} on {platform.machine()}, {available()} CPU(s) available")
    engines = 0
    for package, module in (("onnxruntime", "onnxruntime"), ("onnxruntime-gpu", "onnxruntime"),
                            ("paddlepaddle", "paddle"), ("paddlepaddle-gpu", "paddle")):  # fmt: skip
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        usable = importlib.util.find_spec(module) is not None
        engines += usable
        print(f"{package} {version}{'' if usable else ' (installed, but cannot be imported)'}")
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        print(f"ONNX Runtime providers: {', '.join(onnxruntime.get_available_providers())}")
    if not engines:
        print("error: no engine: pip install -e '.[server]' (ONNX Runtime) or '.[paddle]'", file=sys.stderr)
        return 1
    return 0

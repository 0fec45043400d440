"""The in-process limit: N processes that do a served request's work with no transport.
`python -m benchmarks.limit SPEC_JSON` prints JSON. Modes:

- independent (the default): benchmarks.reference, a pipeline that shares no code with the server;
- worker: the server's own worker code (JobHandler), for comparison;
- inference: the independent pipeline's ONNX Runtime session alone, on its input tensor.

Each process runs as a CPU worker of the server does (allocator tuning, cpu_threads engine and OpenCV threads)."""

from __future__ import annotations

import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.reference import Reference, read_facts, tune_process

if TYPE_CHECKING:
    from server.workers.handler import JobHandler


@dataclass
class LimitSpec:
    model_dir: str
    engine: str = "onnxruntime"
    procs: int = 1
    duration: float = 10.0
    warmup: float = 1.0
    payload: str = ""  # encoded image
    mode: str = "independent"  # independent | worker | inference
    cpu_threads: int = 1


def worker_handler(model_dir: str, engine_name: str, cpu_threads: int) -> JobHandler:
    """The server's worker code for a model, built in this process as a CPU worker is (allocator, OpenCV threads)."""
    from segcore.engines import EngineOptions, create_engine
    from segcore.images import ImageLimits
    from segcore.repository import load_spec
    from server.workers.handler import JobHandler
    from server.workers.process import tune_process

    options = EngineOptions(cpu_threads=cpu_threads)
    tune_process(options)
    model = load_spec(Path(model_dir))
    assert model.config is not None
    engine = create_engine(model.server_dir, model.config, engine_name, options)
    return JobHandler(model, engine, ImageLimits())


def _call(spec: LimitSpec) -> Callable[[], object]:
    """One request's work in this process, for the spec's mode."""
    data = Path(spec.payload).read_bytes()
    if spec.mode == "worker":
        from server.jobs import Job, JobKind

        handler = worker_handler(spec.model_dir, spec.engine, spec.cpu_threads)

        def call() -> None:
            result = handler.handle([Job(0, JobKind.IMAGE, data)])[0]
            assert result.status == 200, result.message

        return call
    if spec.mode not in ("independent", "inference"):
        raise ValueError(f"unknown limit mode {spec.mode!r}: independent, worker or inference")
    tune_process(spec.cpu_threads)
    pipeline = Reference(Path(spec.model_dir), spec.cpu_threads)
    if spec.mode == "independent":
        return lambda: pipeline(data)
    tensor = pipeline.tensor(data)
    return lambda: pipeline.infer(tensor)


def _loop(spec: LimitSpec, start: Any, results: Any) -> None:
    call = _call(spec)
    call()
    start.wait()
    end_warmup = time.perf_counter() + spec.warmup
    while time.perf_counter() < end_warmup:
        call()
    latencies = []
    stop = time.perf_counter() + spec.duration
    while (now := time.perf_counter()) < stop:
        call()
        latencies.append(time.perf_counter() - now)
    results.put(latencies)


def run(spec: LimitSpec) -> dict[str, Any]:
    """Throughput (sum over processes) and per-call latencies."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(spec.procs), ctx.Queue()
    procs = [ctx.Process(target=_loop, args=(spec, start, results)) for _ in range(spec.procs)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(results.get(timeout=spec.duration + spec.warmup + 300))
    for p in procs:
        p.join()
    return {"spec": asdict(spec), "count": len(latencies), "throughput": len(latencies) / spec.duration,
            "latencies": latencies}  # fmt: skip


def limit_mode(model_dir: Path, engine: str) -> str:
    """The limit the server is held to: the independent pipeline where it can run the model (ONNX Runtime, a
    fixed-size Resize and Normalize), else the worker's own code."""
    if engine != "onnxruntime":
        return "worker"
    try:
        read_facts(model_dir)
    except (ValueError, FileNotFoundError):
        return "worker"
    return "independent"


def limit_runs(mode: str, procs: int) -> list[tuple[int, str]]:
    """(processes, mode) of benchmarks.run's limit table: the held-to limit in `procs` processes and in 1, and where
    that is the independent pipeline, the worker's code (for comparison) and inference alone."""
    if mode == "worker":
        return [(procs, mode), (1, mode)]
    return [(procs, mode), (1, mode), (procs, "worker"), (procs, "inference"), (1, "inference")]


def measure(spec: LimitSpec) -> dict[str, Any]:
    """Run `spec` in a child process: the table row (img/s, p50 and p99 ms)."""
    from benchmarks.procs import ROOT, env

    proc = subprocess.run([sys.executable, "-m", "benchmarks.limit", json.dumps(asdict(spec))], capture_output=True,
                          text=True, check=True, timeout=spec.duration + 600, cwd=ROOT, env=env())  # fmt: skip
    result = json.loads(proc.stdout)
    lat = sorted(result["latencies"])
    return {"system": f"in-process limit ({spec.mode})", "procs": spec.procs, "qps": round(result["throughput"], 2),
            "p50_ms": round(statistics.median(lat) * 1000, 2),
            "p99_ms": round(lat[int(0.99 * len(lat))] * 1000, 2)}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(run(LimitSpec(**json.loads(sys.argv[1])))))

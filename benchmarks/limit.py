"""The in-process limit: the server's own worker code (decode, preprocess, inference, postprocess, encode)
or the engine alone, in N processes with no transport. `python -m benchmarks.limit SPEC_JSON` prints JSON."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    mode: str = "pipeline"  # pipeline | inference
    cpu_threads: int = 1


def worker_handler(model_dir: str, engine_name: str, cpu_threads: int) -> JobHandler:
    """The server's worker code for a model, built in this process with the workers' allocator tuning."""
    from segcore.allocator import tune_malloc
    from segcore.engines import EngineOptions, create_engine
    from segcore.images import ImageLimits
    from segcore.repository import load_spec
    from server.workers.handler import JobHandler

    tune_malloc()  # as the server's workers do, so that the in-process side gets the same allocator
    model = load_spec(Path(model_dir))
    assert model.config is not None
    engine = create_engine(model.server_dir, model.config, engine_name, EngineOptions(cpu_threads=cpu_threads))
    return JobHandler(model, engine, ImageLimits())


def _loop(spec: LimitSpec, start: Any, results: Any) -> None:
    from segcore.images import decode_image
    from server.jobs import Job, JobKind

    handler = worker_handler(spec.model_dir, spec.engine, spec.cpu_threads)
    model, engine = handler.spec, handler.engine
    assert model.config is not None
    data = Path(spec.payload).read_bytes()
    if spec.mode == "pipeline":

        def call() -> None:
            result = handler.handle([Job(0, JobKind.IMAGE, data)])[0]
            assert result.status == 200, result.message

    else:
        assert handler.images is not None
        tensor, _ = handler.images.preprocess(decode_image(data))
        feeds = {model.config.input_name: tensor[None]}

        def call() -> None:
            engine.run(feeds)

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


if __name__ == "__main__":
    print(json.dumps(run(LimitSpec(**json.loads(sys.argv[1])))))

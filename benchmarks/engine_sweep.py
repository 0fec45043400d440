"""The engine alone, in this process: images per second and latency vs batch size, on the CPU or a GPU.

Each batch size runs the server's engine (`segcore.engines.create_engine`, numpy in and out, as a worker calls it)
for a fixed time after a warm-up; on a GPU it also runs a second ONNX Runtime session with the input already in
GPU memory and the output left there (I/O binding), a lower bound that shows what the host <-> device copies cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from segcore.engines import EngineOptions, create_engine
from segcore.repository import ModelSpec

DEFAULT_HW = 512  # for models whose input height and width are dynamic


def input_shape(spec: ModelSpec, batch: int) -> tuple[int, int, int, int]:
    """The model's declared input with this batch; dynamic height/width become DEFAULT_HW."""
    assert spec.config is not None
    dims = list(spec.config.input_shape or [None, 3, None, None])
    channels = dims[1] if dims[1] and dims[1] > 0 else 3
    height, width = (d if d and d > 0 else DEFAULT_HW for d in dims[2:4])
    return batch, channels, height, width


def _timed(call: Callable[[], object], seconds: float, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 5:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _row(batch: int, times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {"batch": batch, "runs": len(times), "img_per_s": round(batch * len(times) / sum(times), 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3)}  # fmt: skip


def _on_device(spec: ModelSpec, gpu_id: int) -> Callable[[np.ndarray], Callable[[], object]]:
    """A CUDA session whose input lives in GPU memory and whose output stays there: run(x) -> a call."""
    import onnxruntime as ort

    assert spec.config is not None and spec.config.onnx is not None
    session = ort.InferenceSession(str(spec.server_dir / spec.config.onnx.file),
                                   providers=[("CUDAExecutionProvider", {"device_id": gpu_id})])  # fmt: skip
    name, outputs = session.get_inputs()[0].name, [o.name for o in session.get_outputs()]

    def prepare(x: np.ndarray) -> Callable[[], object]:
        binding = session.io_binding()
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", gpu_id))
        for output in outputs:
            binding.bind_output(output, "cuda", gpu_id)

        def call() -> None:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return call

    return prepare


def sweep(spec: ModelSpec, device: str, batches: list[int], seconds: float = 2.0, warmup: int = 3,
          cpu_threads: int = 1, gpu_id: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """One row per batch size: the engine as the server runs it, and on a GPU the on-device lower bound."""
    assert spec.config is not None
    options = EngineOptions(device="gpu", gpu_id=gpu_id) if device == "gpu" else EngineOptions(cpu_threads=cpu_threads)
    engine = create_engine(spec.server_dir, spec.config, "onnxruntime", options)
    on_device = _on_device(spec, gpu_id) if device == "gpu" else None
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        shape = input_shape(spec, batch)
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        feeds = {spec.config.input_name: x}
        row = {"input": "x".join(map(str, shape)), **_row(batch, _timed(partial(engine.run, feeds), seconds, warmup))}
        if on_device is not None:
            device_only = _row(batch, _timed(on_device(x), seconds, warmup))
            row.update(on_device_img_per_s=device_only["img_per_s"], on_device_p50_ms=device_only["p50_ms"],
                       copies_share=round(1 - device_only["p50_ms"] / row["p50_ms"], 3))  # fmt: skip
        rows.append(row)
    return rows

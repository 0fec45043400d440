"""ONNX Runtime engine (CPU, CUDA, TensorRT execution providers). Releases the GIL while running."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from segcore.engines.base import EngineOptions
from segcore.modelconfig import OnnxInfo


def providers_for(options: EngineOptions) -> list[str | tuple[str, dict[str, object]]]:
    """The execution providers to ask for, best first."""
    if options.device != "gpu":
        return ["CPUExecutionProvider"]
    cuda: tuple[str, dict[str, object]] = ("CUDAExecutionProvider", {"device_id": options.gpu_id})
    if not options.use_trt:
        return [cuda, "CPUExecutionProvider"]
    trt: dict[str, object] = {"device_id": options.gpu_id, "trt_fp16_enable": options.precision == "fp16"}
    if options.precision == "int8":
        trt["trt_int8_enable"] = True
    return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]


def _load_cuda_libraries(ort: object) -> None:
    """Let onnxruntime-gpu find CUDA and cuDNN installed from pip (the nvidia-* wheels) as well as the system's;
    a no-op on builds without the helper (it came with onnxruntime 1.21)."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints advice to stdout; failures surface below
            preload()


class OnnxRuntimeEngine:
    """One ONNX Runtime session; outputs are returned under the Paddle model's output names."""

    name = "onnxruntime"

    def __init__(self, onnx_file: Path, info: OnnxInfo, options: EngineOptions) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = options.cpu_threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        wanted = providers_for(options)
        if options.device == "gpu":
            _load_cuda_libraries(ort)
        available = set(ort.get_available_providers())
        providers = [p for p in wanted if (p if isinstance(p, str) else p[0]) in available]
        if options.device == "gpu" and "CUDAExecutionProvider" not in available:
            raise RuntimeError("GPU requested but this onnxruntime build has no CUDAExecutionProvider")
        self._session = ort.InferenceSession(str(onnx_file), so, providers=providers)
        if options.device == "gpu" and "CUDAExecutionProvider" not in self._session.get_providers():
            # onnxruntime falls back to the CPU with only a log line when CUDA's libraries do not load
            raise RuntimeError(
                "GPU requested but onnxruntime could not load the CUDA execution provider "
                "(its CUDA or cuDNN libraries are missing or do not match); see the onnxruntime error above"
            )
        if options.use_trt and "TensorrtExecutionProvider" not in self._session.get_providers():
            # likewise for TensorRT (libnvinfer): a silent fall back to CUDA would serve fp32 under an fp16 flag
            raise RuntimeError(
                "--use_trt: onnxruntime could not load the TensorRT execution provider (TensorRT's libnvinfer is "
                "missing or does not match this onnxruntime build); run without --use_trt, or use --engine paddle"
            )
        self._onnx_inputs = [i.name for i in self._session.get_inputs()]
        self._onnx_outputs = [o.name for o in self._session.get_outputs()]
        self.input_names = list(info.input_names)
        self.output_names = list(info.output_names)
        self._input_map = dict(zip(self.input_names, self._onnx_inputs, strict=True))

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._onnx_outputs, {self._input_map[k]: v for k, v in feeds.items()})
        return dict(zip(self.output_names, values, strict=True))

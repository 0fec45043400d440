"""ONNX Runtime engine (CPU, CUDA, TensorRT execution providers). Releases the GIL while running."""

from __future__ import annotations

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

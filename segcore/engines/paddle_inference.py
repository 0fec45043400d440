"""Paddle Inference engine (CPU with oneDNN, GPU, TensorRT)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2  # noqa: F401  -- import before paddle: paddle 2.6 and opencv clash over zlib otherwise
import numpy as np

from segcore.engines.base import EngineOptions

log = logging.getLogger(__name__)
PADDLE_MISSING = ("Paddle Inference is not installed (the [server] extra runs ONNX Runtime only): "
                  "pip install 'segserving[paddle]', or convert the model with --onnx")  # fmt: skip


class PaddleEngine:
    """One Paddle predictor. Paddle's run() holds the GIL: use one engine per worker process."""

    name = "paddle"

    def __init__(self, model_file: Path, params_file: Path, options: EngineOptions) -> None:
        try:
            import paddle
            from paddle import inference
        except ModuleNotFoundError as exc:
            raise RuntimeError(PADDLE_MISSING) from exc

        if options.device == "gpu" and not paddle.device.is_compiled_with_cuda():
            # Paddle would only print a warning and run on the CPU while the server reports gpu
            raise RuntimeError("GPU requested but this paddlepaddle build has no CUDA; install paddlepaddle-gpu")
        config = inference.Config(str(model_file), str(params_file))
        config.disable_glog_info()
        if options.device == "gpu":
            config.enable_use_gpu(100, options.gpu_id)
            if options.use_trt:
                precision = {
                    "fp32": inference.PrecisionType.Float32,
                    "fp16": inference.PrecisionType.Half,
                    "int8": inference.PrecisionType.Int8,
                }[options.precision]
                config.enable_tensorrt_engine(
                    workspace_size=1 << 30,
                    max_batch_size=1,
                    min_subgraph_size=options.trt_min_subgraph_size,
                    precision_mode=precision,
                    use_static=False,
                    use_calib_mode=options.precision == "int8",
                )
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(options.cpu_threads)
            if options.use_mkldnn:
                config.enable_mkldnn()
                config.set_mkldnn_cache_capacity(10)
            else:
                config.disable_mkldnn()
        config.switch_ir_optim(options.ir_optim)
        if options.mem_optim and Path(model_file).suffix != ".json":
            config.enable_memory_optim()
        elif options.mem_optim:
            # Paddle 3.x fails in create_predictor ("memory_optimize_pass") for PIR model.json programs.
            log.info("memory optimisation is not available for PIR programs (%s); running without it", model_file)
        self._predictor = inference.create_predictor(config)
        self.input_names = list(self._predictor.get_input_names())
        self.output_names = list(self._predictor.get_output_names())
        self._inputs = {n: self._predictor.get_input_handle(n) for n in self.input_names}
        self._outputs = {n: self._predictor.get_output_handle(n) for n in self.output_names}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, array in feeds.items():
            handle = self._inputs[name]
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(np.ascontiguousarray(array))
        self._predictor.run()
        return {name: handle.copy_to_cpu() for name, handle in self._outputs.items()}
